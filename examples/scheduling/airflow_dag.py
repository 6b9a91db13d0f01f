"""Airflow: the nanguard task gates the training task through its exit code (0 passed, 1 failed, 2 error).

A BashOperator fails its task on any non-zero exit, so `train` (all_success by default) never runs on data
whose gate failed.
"""
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("train_with_nanguard", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False) as dag:
    validate = BashOperator(
        task_id="nanguard",
        bash_command=(
            "nanguard run --input 'gs://bucket/raw/{{ ds }}/*.parquet' --output gs://bucket/validated/{{ ds }} "
            "--label clicked:binary --baseline gs://bucket/validated/train --overwrite --log-format json "
            "-- --runner=DataflowRunner --project=my-project --region=europe-west1 "
            "--temp_location=gs://bucket/tmp --setup_file=/opt/nanguard/pyproject.toml"
        ),
    )
    train = BashOperator(task_id="train", bash_command="python /opt/train/train.py --data gs://bucket/validated/{{ ds }}")
    validate >> train
