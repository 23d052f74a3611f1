-- The target table of seed 000's iris flow, exactly as the seed's create_table.py makes it.
-- pipelines/iris.yaml and pipelines/iris-api.yaml write it (id from the source row, so a
-- replay finds its rows); create it first: psql "$DATABASE_URL" -f pipelines/sql/iris_prediction.sql
CREATE TABLE IF NOT EXISTS iris_prediction (
    id SERIAL PRIMARY KEY,
    timestamp timestamp,
    iris_class int
);
