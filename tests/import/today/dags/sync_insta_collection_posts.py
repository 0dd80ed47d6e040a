# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there, its two excerpts (sections 1 and 6) in order.
# dags/sync_insta_collection_posts.py (ACTUAL CODE)
with DAG(
        dag_id='sync_insta_collection_posts',
        start_date=days_ago(1),
        catchup=False,
        max_active_runs=1,
        concurrency=1,
        on_failure_callback = SlackNotifier.slack_fail_alert,
        on_success_callback = SlackNotifier.slack_fail_alert,
        schedule_interval="*/10 * * * *",
) as dag:
    task = PythonOperator(
        task_id='create_insta_post_scl',
        python_callable=create_scrape_request_log
    )

# dags/sync_insta_collection_posts.py (ACTUAL CODE)
def create_scrape_request_log():
    import clickhouse_connect

    connection = BaseHook.get_connection("clickhouse_gcc")
    client = clickhouse_connect.get_client(
        host=connection.host,
        password=connection.password,
        username=connection.login,
        send_receive_timeout=extra_params['send_receive_timeout']
    )

    # Smart query: find posts needing refresh, exclude recent attempts and failures
    posts = client.query('''
        with
        posts_to_scrape as (
            select short_code shortcode
            from dbt.stg_coffee_post_collection_item
            where platform = 'INSTAGRAM'
              and post_type IN ('reels', 'image', 'carousel')
              and match(short_code, '^[0-9]*$') = 0
              and created_at >= now() - INTERVAL 2 MONTH
        ),
        attempted_recently as (
            SELECT JSONExtractString(params, 'shortcode') as shortcode
            from _e.scrape_request_log_events
            where flow = 'refresh_post_by_shortcode'
              and event_timestamp >= now() - INTERVAL 12 HOUR
        ),
        failures as (
            SELECT JSONExtractString(params, 'shortcode') as shortcode
            from dbt.stg_beat_scrape_request_log
            where flow = 'refresh_post_by_shortcode'
              and status = 'FAILED'
              and created_at >= now() - INTERVAL 1 MONTH
            group by shortcode
            having uniqExactIf(id, status = 'FAILED') > 1
               and uniqExactIf(id, status = 'COMPLETE') = 0
        )
        select * from candidate_set
        order by publish_time asc nulls first
        LIMIT 250
    ''')

    # Fire scrape requests to Beat API
    for shortcode in posts.result_rows:
        data = {"flow": flow, "platform": "INSTAGRAM",
                "params": {"shortcode": shortcode[0]}}
        response = requests.post(url=url, data=json.dumps(data))
