# Written from /work/shared/reference/current-platform.md (issue #16): the code the write-up
# shows for this file, as it is written there.
# dags/slack_connection.py (ACTUAL CODE)
class SlackNotifier(BaseNotifier):
    def slack_fail_alert(context):
        ti = context['ti']
        task_state = ti.state
        if task_state == 'success':
            return  # Skip success notifications
        elif task_state == 'failed':
            SLACK_CONN_ID = Variable.get('slack_failure_conn')
            slack_msg = f"""
            :x: Task Failed.
            *Task*: {context.get('task_instance').task_id}
            *Dag*: {context.get('task_instance').dag_id}
            *Execution Time*: {context.get('execution_date')}
            <{context.get('task_instance').log_url}|*Logs*>
            """
            slack_alert = SlackWebhookOperator(
                task_id='slack_fail',
                webhook_token=slack_webhook_token,
                message=slack_msg,
                channel=channel,
                username='airflow',
            )
            return slack_alert.execute(context=context)
