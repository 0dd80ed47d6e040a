# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there, its two excerpts (sections 1 and 3) in order,
# and section 5's check_hour, which the write-up gives for the hourly and collection DAGs.
# Skip hourly/collection DAGs during the daily batch window (19:00-22:00 UTC)
def check_hour():
    hour = datetime.now().hour
    if 19 <= hour < 22:
        return False   # ShortCircuit skips all downstream tasks
    return True

# dags/dbt_collections.py (ACTUAL CODE)
with DAG(
        dag_id="dbt_collections",
        schedule_interval="*/30 * * * *",
        start_date=days_ago(1),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        on_failure_callback = SlackNotifier.slack_fail_alert,
        on_success_callback = SlackNotifier.slack_fail_alert,
        dagrun_timeout=dt.timedelta(minutes=180),
) as dag:
    # ShortCircuit to skip during daily batch window (19:00-22:00)
    check_hour_task = ShortCircuitOperator(
        task_id="check_hour",
        python_callable=check_hour,   # Returns False if 19 <= hour < 22
    )

# dags/dbt_collections.py (ACTUAL CODE -- task chain)

# 1. ShortCircuit: Skip during daily batch window
check_hour_task = ShortCircuitOperator(...)

# 2. Truncate fake events table in ClickHouse before rebuild
truncate_fake_ts = ClickHouseOperator(
    task_id='truncate_fake_ts',
    database='dbt',
    sql='truncate table dbt.mart_fake_events',
    clickhouse_conn_id='clickhouse_gcc',
)

# 3. Run dbt models tagged "collections"
create_ts = DbtRunOperator(
    task_id="create_ts",
    select=["tag:collections"],
    exclude=["tag:deprecated", "tag:post_ranker", "tag:core"],
    target="production",
    profile="gcc_warehouse",
)

# 4. Export from ClickHouse to S3 with hashtag normalization
fetch_from_ch = ClickHouseOperator(
    task_id='fetch_from_ch',
    sql='''
        INSERT INTO FUNCTION s3(
            '.../data-pipeline/tmp/cps.json', 'KEY', 'SECRET', 'JSONEachRow'
        )
        select platform, post_short_code, post_type,
            replaceRegexpAll(post_link, '[^a-zA-Z0-9_%\/\:\.\-\?]', '') post_link,
            arrayMap(x -> lower(x), hashtags) hashtags,
            ...
        from dbt.mart_collection_post
        SETTINGS s3_truncate_on_insert=1;
    ''',
)

# 5. SSH download with escape character handling
download_cmd = ("aws s3 cp s3://gcc-social-data/.../cps.json /tmp/cps_raw.json "
                "&& sed -e 's/\\\\/\\\\\\\\/g' /tmp/cps_raw.json > /tmp/cps.json")
import_to_pg_box = SSHOperator(ssh_conn_id='ssh_prod_pg', command=download_cmd)

# 6. PostgreSQL: JSONB parse + enrich + atomic swap
import_to_pg_db = PostgresOperator(
    postgres_conn_id="prod_pg",
    sql="""
        -- Create temp table and COPY JSON
        CREATE TEMP TABLE mart_cps(data jsonb);
        COPY mart_cps from '/tmp/cps.json';

        -- Create new table matching production schema
        create table collection_post_metrics_summary_tmp (
            like collection_post_metrics_summary
            including defaults including constraints including indexes
        );

        -- Parse 35+ JSONB fields with type casting
        INSERT INTO collection_post_metrics_summary_tmp (...)
        select
            (data->>'platform') platform,
            coalesce((data->>'published_at')::timestamp, date('1970-01-01')) published_at,
            coalesce((data->>'followers')::int8, 0) followers,
            round(coalesce((data->>'views')::float8, 0.0)) views,
            (data->>'hashtags')::jsonb hashtags,
            ...
        from mart_cps;

        -- Enrich with profile pics and names from Instagram/YouTube
        update collection_post_metrics_summary_tmp
        set profile_pic = ia.thumbnail, followers = coalesce(ia.followers, 0)
        from instagram_account ia
        where ia.ig_id = profile_social_id;

        -- Enrich with collection share IDs
        update collection_post_metrics_summary_tmp
        set collection_share_id = pc.share_id
        from post_collection pc
        where pc.id = collection_id and collection_type = 'POST';

        -- Clean up invalid rows
        delete from collection_post_metrics_summary_tmp
        where collection_type = 'POST' and show_in_report = false;

        -- ATOMIC TABLE SWAP
        BEGIN;
            ALTER TABLE "collection_post_metrics_summary"
                RENAME TO "collection_post_metrics_summary_old_bkp";
            ALTER TABLE "collection_post_metrics_summary_tmp"
                RENAME TO "collection_post_metrics_summary";
        COMMIT;
    """,
)

# Pipeline chain
check_hour_task >> truncate_fake_ts >> create_ts >> fetch_from_ch
    >> import_to_pg_box >> import_to_pg_db
