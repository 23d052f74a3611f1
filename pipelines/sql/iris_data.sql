-- The source table of the iris flow (seed 000): the rows the data generator inserts, which the
-- postgres source in pipelines/iris-source.yaml reads in `id` order. A serial id written by
-- single-row transactions is the safe increasing column (see docs/pipelines.md, "postgres
-- source"). A few rows to start with; run with: psql "$DATABASE_URL" -f pipelines/sql/iris_data.sql
CREATE TABLE IF NOT EXISTS iris_data (
    id SERIAL PRIMARY KEY,
    timestamp timestamp,
    sepal_length double precision,
    sepal_width double precision,
    petal_length double precision,
    petal_width double precision,
    target integer
);

INSERT INTO iris_data (timestamp, sepal_length, sepal_width, petal_length, petal_width, target)
VALUES ('2026-01-01 00:00:00', 5.1, 3.5, 1.4, 0.2, 0),
       ('2026-01-01 00:00:01.006', 4.9, 3.0, 1.4, 0.2, 0),
       ('2026-01-01 00:00:02', 7.0, 3.2, 4.7, 1.4, 1),
       ('2026-01-01 00:00:03', 6.4, 3.2, 4.5, 1.5, 1),
       ('2026-01-01 00:00:04', 6.3, 3.3, 6.0, 2.5, 2),
       ('2026-01-01 00:00:05', 5.8, 2.7, 5.1, 1.9, 2);
