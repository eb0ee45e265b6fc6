"""The ``demo`` seed: fixed apps and accounts, plus the Box JWT app's key pair and Box app config file."""

# ruff: noqa: S105  (public demo credentials of the offline emulator, documented in the README)

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dropbox_box_provider.emulator.state import BOX, DROPBOX, Account, App, EmulatorState

DEMO_DROPBOX_CLIENT_ID = "demo-dropbox-app"
DEMO_DROPBOX_CLIENT_SECRET = "demo-dropbox-secret"
DEMO_DROPBOX_TEAM_CLIENT_ID = "demo-dropbox-team-app"
DEMO_DROPBOX_TEAM_CLIENT_SECRET = "demo-dropbox-team-secret"
DEMO_BOX_CLIENT_ID = "demo-box-app"
DEMO_BOX_CLIENT_SECRET = "demo-box-secret"
DEMO_BOX_JWT_CLIENT_ID = "demo-box-jwt-app"
DEMO_BOX_JWT_CLIENT_SECRET = "demo-box-jwt-secret"
DEMO_BOX_JWT_KID = "demo-kid"
DEMO_BOX_JWT_PASSPHRASE = "demo-passphrase"
DEMO_BOX_CCG_CLIENT_ID = "demo-box-ccg-app"
DEMO_BOX_CCG_CLIENT_SECRET = "demo-box-ccg-secret"
DEMO_BOX_ENTERPRISE_ID = "900001"
DEMO_REDIRECT_URIS = ["http://localhost:33333", "http://127.0.0.1:33333"]

DEMO_DROPBOX_ACCOUNT_ID = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"
DEMO_DROPBOX_UID = "12345678"
DEMO_DROPBOX_NAMESPACE_ID = "1000001"
DEMO_DROPBOX_TEAM_ID = "dbtid:AAD-demo-team-000000000000000000000"
DEMO_DROPBOX_TEAM_ADMIN_ID = "dbid:AAB-demo-team-admin-000000000000000"
DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID = "dbmid:AAB-demo-team-admin"
DEMO_DROPBOX_TEAM_MEMBER_ID = "dbid:AAC-demo-team-member-00000000000000"
DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID = "dbmid:AAC-demo-team-member"

DEMO_BOX_USER_ID = "10001"
DEMO_BOX_SECOND_USER_ID = "10002"
DEMO_BOX_JWT_SERVICE_ACCOUNT_ID = "20001"
DEMO_BOX_CCG_SERVICE_ACCOUNT_ID = "20002"

BOX_JWT_CONFIG_NAME = "box_jwt_config.json"


def demo_accounts() -> list[Account]:
    """Users of the demo seed (Dropbox: a personal account and a two-member team; Box: one enterprise)."""
    return [
        Account(DROPBOX, DEMO_DROPBOX_ACCOUNT_ID, "Demo User", "demo@example.com",
                namespace_id=DEMO_DROPBOX_NAMESPACE_ID, uid=DEMO_DROPBOX_UID),
        Account(DROPBOX, DEMO_DROPBOX_TEAM_ADMIN_ID, "Team Admin", "admin@team.example.com", role="admin",
                team_id=DEMO_DROPBOX_TEAM_ID, member_id=DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID,
                namespace_id="1000002", uid="12345679"),
        Account(DROPBOX, DEMO_DROPBOX_TEAM_MEMBER_ID, "Team Member", "member@team.example.com",
                team_id=DEMO_DROPBOX_TEAM_ID, member_id=DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID,
                namespace_id="1000003", uid="12345680"),
        Account(BOX, DEMO_BOX_USER_ID, "Demo User", "demo@example.com", role="admin",
                enterprise_id=DEMO_BOX_ENTERPRISE_ID),
        Account(BOX, DEMO_BOX_SECOND_USER_ID, "Second User", "second@example.com",
                enterprise_id=DEMO_BOX_ENTERPRISE_ID),
        Account(BOX, DEMO_BOX_JWT_SERVICE_ACCOUNT_ID, "Demo JWT Service Account",
                f"AutomationUser_{DEMO_BOX_JWT_SERVICE_ACCOUNT_ID}@boxdevedition.com", role="service",
                enterprise_id=DEMO_BOX_ENTERPRISE_ID),
        Account(BOX, DEMO_BOX_CCG_SERVICE_ACCOUNT_ID, "Demo CCG Service Account",
                f"AutomationUser_{DEMO_BOX_CCG_SERVICE_ACCOUNT_ID}@boxdevedition.com", role="service",
                enterprise_id=DEMO_BOX_ENTERPRISE_ID),
    ]  # fmt: skip


def demo_apps(jwt_public_key_pem: str) -> list[App]:
    """Apps of the demo seed."""
    return [
        App(DROPBOX, DEMO_DROPBOX_CLIENT_ID, DEMO_DROPBOX_CLIENT_SECRET, list(DEMO_REDIRECT_URIS)),
        App(DROPBOX, DEMO_DROPBOX_TEAM_CLIENT_ID, DEMO_DROPBOX_TEAM_CLIENT_SECRET, list(DEMO_REDIRECT_URIS),
            team=True, team_id=DEMO_DROPBOX_TEAM_ID),
        App(BOX, DEMO_BOX_CLIENT_ID, DEMO_BOX_CLIENT_SECRET, list(DEMO_REDIRECT_URIS),
            enterprise_id=DEMO_BOX_ENTERPRISE_ID),
        App(BOX, DEMO_BOX_JWT_CLIENT_ID, DEMO_BOX_JWT_CLIENT_SECRET,
            public_keys={DEMO_BOX_JWT_KID: jwt_public_key_pem}, enterprise_id=DEMO_BOX_ENTERPRISE_ID,
            service_account_id=DEMO_BOX_JWT_SERVICE_ACCOUNT_ID),
        App(BOX, DEMO_BOX_CCG_CLIENT_ID, DEMO_BOX_CCG_CLIENT_SECRET, enterprise_id=DEMO_BOX_ENTERPRISE_ID,
            service_account_id=DEMO_BOX_CCG_SERVICE_ACCOUNT_ID),
    ]  # fmt: skip


def load_or_create_jwt_config(data_dir: Path) -> str:
    """Write (or reuse) ``<data_dir>/box_jwt_config.json`` with mode 0600; return the public key PEM."""
    path = data_dir / BOX_JWT_CONFIG_NAME
    if path.exists():
        config = json.loads(path.read_text())
        private_pem = config["boxAppSettings"]["appAuth"]["privateKey"].encode()
        key = serialization.load_pem_private_key(private_pem, password=DEMO_BOX_JWT_PASSPHRASE.encode())
        return (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(DEMO_BOX_JWT_PASSPHRASE.encode()),
    ).decode()
    config = {
        "boxAppSettings": {
            "clientID": DEMO_BOX_JWT_CLIENT_ID,
            "clientSecret": DEMO_BOX_JWT_CLIENT_SECRET,
            "appAuth": {
                "publicKeyID": DEMO_BOX_JWT_KID,
                "privateKey": private_pem,
                "passphrase": DEMO_BOX_JWT_PASSPHRASE,
            },
        },
        "enterpriseID": DEMO_BOX_ENTERPRISE_ID,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    os.chmod(path, 0o600)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def apply_seed(state: EmulatorState, seed: str | None, data_dir: Path) -> None:
    """Install ``seed`` ("demo" or None) as the state's reset baseline and reset to it."""
    if seed is None:
        state.seed_apps, state.seed_accounts = [], []
    elif seed == "demo":
        state.seed_accounts = demo_accounts()
        state.seed_apps = demo_apps(load_or_create_jwt_config(data_dir))
    else:
        raise ValueError(f"unknown seed {seed!r}: use --seed demo or leave it out")
    state.reset()
