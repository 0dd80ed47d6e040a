# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there.
# dags/dbt_weekly.py (ACTUAL CODE)
with DAG(
        dag_id="dbt_weekly",
        schedule_interval="0 6 */7 * *",
        start_date=days_ago(7),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        dagrun_timeout=dt.timedelta(minutes=360),
) as dag:
    dbt_run = DbtRunOperator(
        task_id="dbt_run_weekly",
        select=["tag:weekly"],
        exclude=["tag:deprecated", "tag:post_ranker", "tag:core"],
        target="production",
        profile="gcc_warehouse",
    )
