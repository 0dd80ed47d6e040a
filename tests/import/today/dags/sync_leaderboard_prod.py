# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there.
# dags/sync_leaderboard_prod.py (ACTUAL CODE)
with DAG(
        dag_id='sync_leaderboard_prod',
        start_date=days_ago(1),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        on_failure_callback = SlackNotifier.slack_fail_alert,
        on_success_callback = SlackNotifier.slack_fail_alert,
        schedule_interval="15 20 * * *",
) as dag:

    # STEP 1: Export from ClickHouse to S3 via INSERT INTO FUNCTION s3(...)
    fetch_leaderboard_from_ch = ClickHouseOperator(
        task_id='fetch_leaderboard_from_ch',
        database='vidooly',
        sql='''
            INSERT INTO FUNCTION s3(
                'https://gcc-social-data.s3.ap-south-1.amazonaws.com/
                    data-pipeline/tmp/leaderboard.json',
                'AWS_KEY', 'AWS_SECRET', 'JSONEachRow'
            )
            SELECT * from dbt.mart_leaderboard
            SETTINGS s3_truncate_on_insert=1,
                     output_format_json_quote_64bit_integers=0;
        ''',
        clickhouse_conn_id='clickhouse_gcc',
    )

    # STEP 2: Download from S3 to PostgreSQL host via SSH
    download_cmd = "aws s3 cp s3://gcc-social-data/data-pipeline/tmp/leaderboard.json /tmp/leaderboard.json"
    import_to_pg_box = SSHOperator(
        ssh_conn_id='ssh_prod_pg',
        cmd_timeout=1000,
        task_id='download_to_pg_local',
        command=download_cmd,
    )

    # STEP 3: Load into PostgreSQL with JSONB parsing + atomic swap
    uniq = ''.join(random.choices(string.ascii_letters + string.digits, k=10))
    import_to_pg_db = PostgresOperator(
        task_id="import_to_pg_db",
        runtime_parameters={'statement_timeout': '14400s'},  # 4-hour timeout
        postgres_conn_id="prod_pg",
        sql=f"""
            -- Clean up previous runs
            DROP TABLE IF EXISTS leaderboard_tmp;
            DROP TABLE IF EXISTS mart_leaderboard;
            DROP TABLE IF EXISTS leaderboard_old_bkp;

            -- Create temp table for raw JSON
            CREATE TEMP TABLE mart_leaderboard(data jsonb);
            COPY mart_leaderboard from '/tmp/leaderboard.json';

            -- Create UNLOGGED table (faster inserts, no WAL)
            create UNLOGGED table leaderboard_tmp (
                like leaderboard
                including defaults
            );

            -- Parse JSONB into typed columns
            INSERT INTO leaderboard_tmp (
                month, language, category, platform, profile_type,
                handle, followers, engagement_rate, avg_likes, avg_comments,
                avg_views, avg_plays, followers_rank, followers_change_rank,
                views_rank, platform_id, country, ...
            )
            SELECT
                (data->>'month')::timestamp AS month,
                (data->>'language') AS language,
                (data->>'category') AS category,
                (data->>'followers')::int8 AS followers,
                (data->>'engagement_rate')::float AS engagement_rate,
                (data->>'last_month_ranks')::jsonb AS last_month_ranks,
                (data->>'current_month_ranks')::jsonb AS current_month_ranks
                ...
            from mart_leaderboard;

            -- Enrich with platform profile IDs
            update leaderboard_tmp lv
            set platform_profile_id = ia.id,
                audience_gender = ia.audience_gender,
                search_phrase = ia.search_phrase
            from instagram_account ia
            where ia.ig_id = lv.platform_id and lv.platform_id is not null;

            -- Switch from UNLOGGED to LOGGED for durability
            ALTER TABLE leaderboard_tmp SET LOGGED;

            -- Build indexes (random suffix to avoid name conflicts)
            CREATE UNIQUE INDEX leaderboard_{uniq}_pkey1
                ON public.leaderboard_tmp USING btree (id);
            CREATE INDEX leaderboard_{uniq}_month_platform_idx1
                ON public.leaderboard_tmp USING btree (month, platform);
            -- ... 4 more indexes

            -- ATOMIC TABLE SWAP inside transaction
            BEGIN;
            ALTER TABLE "leaderboard" RENAME TO "leaderboard_old_bkp";
            ALTER TABLE "leaderboard_tmp" RENAME TO "leaderboard";
            COMMIT;
        """,
    )

    # STEP 4: Vacuum for query planner stats
    vacuum_to_pg_db = PostgresOperator(
        task_id="vacuum_to_pg_db",
        runtime_parameters={'statement_timeout': '3000s'},
        postgres_conn_id="prod_pg",
        sql="vacuum analyze leaderboard;",
        autocommit=True,
    )

    # Pipeline: CH -> S3 -> SSH Download -> PG Load -> Vacuum
    fetch_leaderboard_from_ch >> import_to_pg_box >> import_to_pg_db >> vacuum_to_pg_db
