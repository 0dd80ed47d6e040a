# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there.
# dags/post_ranker.py (ACTUAL CODE)
with DAG(
        dag_id="post_ranker",
        schedule_interval="0 */5 * * *",
        start_date=days_ago(1),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        dagrun_timeout=dt.timedelta(minutes=300),
) as dag:
    dbt_run = DbtRunOperator(
        task_id="post_ranker_dbt",
        select=["tag:post_ranker"],
        exclude=["tag:deprecated", "tag:core"],
        target="production",
        profile="gcc_warehouse",
    )
