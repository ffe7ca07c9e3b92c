CREATE TABLE IF NOT EXISTS products (id serial PRIMARY KEY, name text NOT NULL);
