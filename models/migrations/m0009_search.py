"""Full-text search: `search_tsv` columns with GIN indexes on documents, blocks and cards.

The vectors are kept by row triggers, so whatever writes the rows maintains them: the `blocks`
projection (one document's rows per refresh, never the whole index), title edits, card edits and
checklist changes. All use the text search configuration `collab_search`, a copy of the configured
language (`COLLAB_SEARCH_LANGUAGE`, applied at startup by `collab_search_configure`) with `unaccent`
in front of the word dictionaries when the extension is available, so "cafe" finds "café" and
`ts_headline` highlights with the same rules. The configuration is altered in place, never
dropped: cached plans keep its OID.
"""

import peewee

from models.migrate import run_sql

_FUNCTIONS = [
    # One row: the language collab_search was built from (NULL until the first configure).
    "CREATE TABLE IF NOT EXISTS search_config ("
    " id boolean PRIMARY KEY DEFAULT true CHECK (id), language regconfig)",
    "INSERT INTO search_config (id, language) VALUES (true, NULL) ON CONFLICT DO NOTHING",
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'collab_search') THEN
           CREATE TEXT SEARCH CONFIGURATION collab_search (COPY = pg_catalog.simple);
         END IF;
       END $$""",
    """CREATE OR REPLACE FUNCTION collab_search_vector(a text, b text DEFAULT NULL,
                                                     c text DEFAULT NULL)
       RETURNS tsvector LANGUAGE sql STABLE PARALLEL SAFE AS $$
         SELECT setweight(to_tsvector('collab_search', coalesce(a, '')), 'A')
             || setweight(to_tsvector('collab_search', coalesce(b, '')), 'B')
             || setweight(to_tsvector('collab_search', coalesce(c, '')), 'C')
       $$""",
    """CREATE OR REPLACE FUNCTION collab_card_vector(card uuid, title text, description text)
       RETURNS tsvector LANGUAGE sql STABLE AS $$
         SELECT collab_search_vector(title, description,
           (SELECT string_agg(i.text, ' ') FROM checklist_items i WHERE i.card_id = card))
       $$""",
    """CREATE OR REPLACE FUNCTION collab_search_reindex() RETURNS void LANGUAGE sql AS $$
         UPDATE documents SET search_tsv = collab_search_vector(title);
         UPDATE blocks SET search_tsv = collab_search_vector(NULL, text);
         UPDATE cards SET search_tsv = collab_card_vector(id, title, description);
       $$""",
    # Make collab_search a copy of `lang` (plus unaccent); re-vector everything only when the
    # language changed (a one-off at the startup after a settings change, never per edit).
    """CREATE OR REPLACE FUNCTION collab_search_configure(lang regconfig)
       RETURNS boolean LANGUAGE plpgsql AS $$
       DECLARE
         r record;
         fold boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent');
       BEGIN
         PERFORM 1 FROM search_config FOR UPDATE;
         IF EXISTS (SELECT 1 FROM search_config WHERE language = lang) THEN
           RETURN false;
         END IF;
         -- (%% is psycopg2's escape: migrations run through it.)
         FOR r IN
           SELECT t.alias,
                  string_agg(m.mapdict::regdictionary::text, ', ' ORDER BY m.mapseqno) AS dicts
           FROM pg_ts_config_map m
           JOIN ts_token_type('default') t ON t.tokid = m.maptokentype
           WHERE m.mapcfg = lang GROUP BY t.alias
         LOOP
           EXECUTE format('ALTER TEXT SEARCH CONFIGURATION collab_search ALTER MAPPING FOR %%I'
                          ' WITH %%s', r.alias,
                          CASE WHEN fold AND r.alias IN ('word', 'hword', 'hword_part')
                               THEN 'unaccent, ' ELSE '' END || r.dicts);
         END LOOP;
         UPDATE search_config SET language = lang;
         PERFORM collab_search_reindex();
         RETURN true;
       END $$""",
]

_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION collab_documents_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.search_tsv := collab_search_vector(NEW.title); RETURN NEW; END $$""",
    "CREATE OR REPLACE TRIGGER documents_search_tsv BEFORE INSERT OR UPDATE OF title"
    " ON documents FOR EACH ROW EXECUTE FUNCTION collab_documents_tsv()",
    """CREATE OR REPLACE FUNCTION collab_blocks_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.search_tsv := collab_search_vector(NULL, NEW.text); RETURN NEW; END $$""",
    "CREATE OR REPLACE TRIGGER blocks_search_tsv BEFORE INSERT OR UPDATE OF text"
    " ON blocks FOR EACH ROW EXECUTE FUNCTION collab_blocks_tsv()",
    """CREATE OR REPLACE FUNCTION collab_cards_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.search_tsv := collab_card_vector(NEW.id, NEW.title, NEW.description);
         RETURN NEW;
       END $$""",
    "CREATE OR REPLACE TRIGGER cards_search_tsv BEFORE INSERT OR UPDATE OF title, description"
    " ON cards FOR EACH ROW EXECUTE FUNCTION collab_cards_tsv()",
    """CREATE OR REPLACE FUNCTION collab_checklist_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE target uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.card_id ELSE NEW.card_id END;
       BEGIN
         UPDATE cards SET search_tsv = collab_card_vector(id, title, description)
         WHERE id = target;
         RETURN NULL;
       END $$""",
    "CREATE OR REPLACE TRIGGER checklist_items_search_tsv"
    " AFTER INSERT OR UPDATE OF text OR DELETE ON checklist_items"
    " FOR EACH ROW EXECUTE FUNCTION collab_checklist_tsv()",
]


def _try_unaccent(db: peewee.Database) -> None:
    """`unaccent` ships with Postgres' contrib (and the embedded build); without it (or without
    the right to create it) search still works, without accent folding."""
    try:
        with db.atomic():  # a savepoint: a refusal must not abort the migration
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
    except peewee.DatabaseError:
        pass


def up(db: peewee.Database) -> None:
    _try_unaccent(db)
    run_sql(
        db,
        *(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_tsv tsvector"
            for table in ("documents", "blocks", "cards")
        ),
        *_FUNCTIONS,
        *_TRIGGERS,
        *(
            f"CREATE INDEX IF NOT EXISTS {table}_search_tsv_idx ON {table} USING gin (search_tsv)"
            for table in ("documents", "blocks", "cards")
        ),
        "SELECT collab_search_configure('pg_catalog.english')",
    )
