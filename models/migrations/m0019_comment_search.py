"""Comment text in full-text search: `comments.search_tsv` (GIN), kept by a row trigger like the
other search columns (m0009_search); a deleted comment (tombstone) has no vector. The re-index
function that a change of `COLLAB_SEARCH_LANGUAGE` runs covers comments from now on."""

import peewee

from models.migrate import run_sql

_VECTOR = "CASE WHEN {row}.deleted_at IS NULL THEN collab_search_vector(NULL, {row}.text) END"


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE comments ADD COLUMN IF NOT EXISTS search_tsv tsvector",
        f"""CREATE OR REPLACE FUNCTION collab_comments_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.search_tsv := {_VECTOR.format(row="NEW")}; RETURN NEW; END $$""",
        "CREATE OR REPLACE TRIGGER comments_search_tsv BEFORE INSERT OR UPDATE OF text, deleted_at"
        " ON comments FOR EACH ROW EXECUTE FUNCTION collab_comments_tsv()",
        f"UPDATE comments SET search_tsv = {_VECTOR.format(row='comments')}",
        "CREATE INDEX IF NOT EXISTS comments_search_tsv_idx ON comments USING gin (search_tsv)",
        f"""CREATE OR REPLACE FUNCTION collab_search_reindex() RETURNS void LANGUAGE sql AS $$
              UPDATE documents SET search_tsv = collab_search_vector(title);
              UPDATE blocks SET search_tsv = collab_search_vector(NULL, text);
              UPDATE cards SET search_tsv = collab_card_vector(id, title, description);
              UPDATE comments SET search_tsv = {_VECTOR.format(row="comments")};
            $$""",
    )
