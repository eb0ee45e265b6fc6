"""A DAG written for apache-airflow-providers-box==2.1.2, kept as its users write them. The migration test
applies only the import edits of docs/migration-from-box-provider.md and runs it against the emulator;
.ci/box-provider checks that this very file loads with the real apache-airflow-providers-box 2.1.2."""

import os
from datetime import datetime

from airflow.providers.box.operators.box import BoxDownloadOperator, BoxUploadOperator
from airflow.providers.box.sensors.box import BoxSensor
from airflow.sdk import DAG

WORK_DIR = os.environ.get("BOX_REPORT_WORK_DIR", "/tmp/box_report")

with DAG(
    dag_id="box_provider_report",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
) as dag:
    upload = BoxUploadOperator(
        task_id="upload_report",
        local_path=f"{WORK_DIR}/report.csv",
        box_path="/migration/report.csv",
        box_conn_id="box_ccg",
    )
    wait = BoxSensor(
        task_id="wait_for_report",
        path="/migration",
        file_pattern="*.csv",
        newer_than="{{ prev_start_date_success }}",
        box_conn_id="box_ccg",
        poke_interval=1,
        timeout=60,
    )
    download = BoxDownloadOperator(
        task_id="download_report",
        local_path=f"{WORK_DIR}/report_copy.csv",
        box_path="/migration/report.csv",
        box_conn_id="box_ccg",
    )
    upload >> wait >> download
