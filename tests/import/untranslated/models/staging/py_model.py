def model(dbt, session):
    return session.table('x')
