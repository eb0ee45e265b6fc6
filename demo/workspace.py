"""The demo's working directory (``.demo/`` by default): a fresh Airflow home, keys, logs and the
environment every Airflow and CLI process of the demo gets."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from dropbox_box_provider.emulator import seed

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags_examples"
BACKEND_PATH = "dropbox_box_provider.secrets.token_store.TokenStoreBackend"

DROPBOX_CONN = "dropbox_default"
BOX_CONN = "box_default"
BOX_JWT_CONN = "box_jwt"


@dataclass
class Workspace:
    """Paths under the work directory and the generated keys (kept out of every printed line)."""

    root: Path
    fernet_key: str = field(default_factory=lambda: Fernet.generate_key().decode(), repr=False)
    store_key: str = field(default_factory=lambda: Fernet.generate_key().decode(), repr=False)
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def emulator_data(self) -> Path:
        return self.root / "emulator"

    @property
    def store_path(self) -> Path:
        return self.root / "oauth_tokens.db"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.store_path}"

    @property
    def metastore(self) -> Path:
        return self.airflow_home / "airflow.db"

    @property
    def jwt_config(self) -> Path:
        return self.emulator_data / seed.BOX_JWT_CONFIG_NAME

    def recreate(self) -> None:
        """Remove anything a previous run left and create the directories (0700: keys live here)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        for path in (self.root, self.airflow_home, self.logs, self.emulator_data):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)

    def define_connections(self, emulator_url: str) -> None:
        """The three demo connections, each pointed at the emulator through Host (endpoint override)."""
        self.connections = {
            DROPBOX_CONN: {
                "conn_type": "dropbox",
                "description": "Demo Dropbox app (OAuth, offline access) on the local emulator",
                "host": emulator_url,
                "login": seed.DEMO_DROPBOX_CLIENT_ID,
                "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
                "extra": {"access_type": "offline"},
            },
            BOX_CONN: {
                "conn_type": "box_oauth",
                "description": "Demo Box app (OAuth) on the local emulator",
                "host": emulator_url,
                "login": seed.DEMO_BOX_CLIENT_ID,
                "password": seed.DEMO_BOX_CLIENT_SECRET,
                "extra": {"callback_url": seed.DEMO_REDIRECT_URIS[0]},
            },
            BOX_JWT_CONN: {
                "conn_type": "box_oauth",
                "description": "Demo Box service account (JWT, Box app config file) on the local emulator",
                "host": emulator_url,
                "extra": {
                    "auth_scheme": "jwt",
                    "jwt_cert": str(self.jwt_config),
                    "jwt_cert_type": "JSONFILE",
                },
            },
        }

    def env(self) -> dict[str, str]:
        """The environment of every demo subprocess: this isolated Airflow home, the token-store secrets
        backend on an embedded sqlite file, and the connections as AIRFLOW_CONN_* variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        home = self.airflow_home
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.metastore}",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.api_secret,
                "AIRFLOW__API__SECRET_KEY": self.api_secret,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__SECRETS__BACKEND": BACKEND_PATH,
                "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
                    {"store": self.store_url, "key": self.store_key}
                ),
                "PYTHONUNBUFFERED": "1",
                "PYTHONWARNINGS": "ignore",
                "NO_COLOR": "1",
            }
        )
        # The venv's scripts (airflow, dropbox-box-auth) first, as `uv run` would.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        for conn_id, definition in self.connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(definition)
        return env

    def write_env_file(self) -> Path:
        """``.demo/env.sh``: source it to run airflow / dropbox-box-auth against the demo yourself."""
        path = self.root / "env.sh"
        names = [k for k in self.env() if k.startswith("AIRFLOW") or k in ("PATH",)]
        env = self.env()
        text = "# Generated by `make demo`: `source .demo/env.sh` points airflow and dropbox-box-auth here.\n"
        text += "".join(f"export {name}={_shell_quote(env[name])}\n" for name in sorted(names))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path


def script(name: str) -> str:
    """The absolute path of a console script of this environment (``airflow``, ``dropbox-box-auth``)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"
