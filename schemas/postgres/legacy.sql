-- Legacy (source) schema, PostgreSQL flavour.
-- Integer ids, orders.customer_id is nullable and has no foreign key (legacy data has
-- orphans), customers.active is an integer flag, every other column is free text.

CREATE TABLE IF NOT EXISTS customers (
    customer_id     bigint PRIMARY KEY,
    customer_name   text,
    email_address   text,
    phone_number    text,
    street_address  text,
    city            text,
    state_province  text,
    zip_postal      text,
    country         text,
    status_code     text,
    active          integer,
    created_date    text,
    last_modified   text
);

CREATE TABLE IF NOT EXISTS products (
    product_id          bigint PRIMARY KEY,
    product_code        text,
    product_name        text,
    description         text,
    unit_price          text,
    category            text,
    status              text,
    product_attributes  text
);

CREATE TABLE IF NOT EXISTS orders (
    order_id      bigint PRIMARY KEY,
    customer_id   bigint,
    order_number  text,
    order_total   text,
    status        text,
    order_date    text,
    order_items   text
);
