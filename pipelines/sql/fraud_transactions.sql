-- The fraud flow's log (seed 004's logger_sql): every scored transaction from topic_2, with the
-- model's verdict and a fraud_confirmed column for an analyst to fill in later. Upserted by
-- trans_num (pipelines/fraud-logger.yaml), so replaying topic_2 does not double rows.
CREATE TABLE IF NOT EXISTS fraud_transactions (
  trans_num              text PRIMARY KEY,
  trans_date_trans_time  timestamp NOT NULL,
  cc_num                 bigint NOT NULL,
  merchant               text NOT NULL,
  category               text NOT NULL,
  amt                    double precision NOT NULL,
  first                  text,
  last                   text,
  gender                 text,
  street                 text,
  city                   text,
  state                  text,
  zip                    bigint,
  lat                    double precision,
  long                   double precision,
  city_pop               bigint,
  job                    text,
  dob                    text,
  unix_time              bigint,
  merch_lat              double precision,
  merch_long             double precision,
  is_fraud               bigint NOT NULL,        -- the model's verdict: 1 fraud, 0 not
  fraud_probability      double precision NOT NULL,
  model_name             text NOT NULL,
  model_version          text NOT NULL,
  fraud_confirmed        boolean                 -- null until someone confirms or denies
);
