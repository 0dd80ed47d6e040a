# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there.
# dags/dbt_hourly.py (ACTUAL CODE)
def check_hour():
    hour = dt.datetime.now().hour
    if 19 <= hour < 22:
        return False
    return True

with DAG(
        dag_id="dbt_hourly",
        schedule_interval="0 1-23/2 * * *",
        start_date=days_ago(1),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        dagrun_timeout=dt.timedelta(minutes=180),
) as dag:
    check_hour_task = ShortCircuitOperator(
        task_id="check_hour",
        python_callable=check_hour,
    )
    dbt_run = DbtRunOperator(
        task_id="dbt_run_hourly",
        select=["tag:hourly"],
        exclude=["tag:deprecated", "tag:post_ranker", "tag:core"],
        target="production",
        profile="gcc_warehouse",
    )
    check_hour_task >> dbt_run
