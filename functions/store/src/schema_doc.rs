//! A Mermaid ER diagram of the live schema (written to `docs/schema.md`).

use std::fmt::Write;

use tokio_postgres::Client;

/// Renders the public schema's tables, columns, keys and foreign keys as Markdown + Mermaid.
pub async fn render(client: &Client) -> anyhow::Result<String> {
    let columns = client
        .query(
            "SELECT c.table_name::text, c.column_name::text,
                    regexp_replace(format_type(a.atttypid, a.atttypmod), '[^a-z0-9_]', '_', 'g'),
                    EXISTS (SELECT 1 FROM pg_index i
                            WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey)),
                    EXISTS (SELECT 1 FROM pg_constraint f
                            WHERE f.conrelid = a.attrelid AND f.contype = 'f' AND a.attnum = ANY(f.conkey))
             FROM information_schema.columns c
             JOIN pg_attribute a ON a.attrelid = format('public.%I', c.table_name)::regclass
                                AND a.attname = c.column_name
             JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
               AND c.table_name NOT IN ('schema_migration', 'schema_definition')
             ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await?;
    let foreign_keys = client
        .query(
            "SELECT DISTINCT cl.relname::text AS child, pcl.relname::text AS parent
             FROM pg_constraint f
             JOIN pg_class cl ON cl.oid = f.conrelid
             JOIN pg_class pcl ON pcl.oid = f.confrelid
             JOIN pg_namespace n ON n.oid = cl.relnamespace
             WHERE f.contype = 'f' AND n.nspname = 'public'
             ORDER BY 2, 1",
            &[],
        )
        .await?;
    let mut out = String::new();
    writeln!(out, "# Schema")?;
    writeln!(out)?;
    writeln!(
        out,
        "Generated from a migrated database by `make schema` (`medrec schema-diagram`); a test fails when it is stale."
    )?;
    writeln!(
        out,
        "The DDL, with comments on every column group, is in `migrations/`; views and functions in `migrations/definitions/`."
    )?;
    writeln!(out)?;
    writeln!(out, "```mermaid")?;
    writeln!(out, "erDiagram")?;
    for fk in &foreign_keys {
        let (child, parent): (String, String) = (fk.get(0), fk.get(1));
        writeln!(out, "    {parent} ||--o{{ {child} : \"\"")?;
    }
    let mut current = String::new();
    for row in &columns {
        let (table, column, ty, pk, fk): (String, String, String, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if table != current {
            if !current.is_empty() {
                writeln!(out, "    }}")?;
            }
            writeln!(out, "    {table} {{")?;
            current = table;
        }
        let keys = match (pk, fk) {
            (true, true) => " PK, FK",
            (true, false) => " PK",
            (false, true) => " FK",
            (false, false) => "",
        };
        writeln!(out, "        {ty} {column}{keys}")?;
    }
    if !current.is_empty() {
        writeln!(out, "    }}")?;
    }
    writeln!(out, "```")?;
    Ok(out)
}
