"""Writing many rows' own values in one statement.

Django's `bulk_update` builds a `CASE WHEN pk = ... THEN ...` expression for every row and field:
about a millisecond of Python a row for a few fields, which was a fifth of a scoring worker's
time on a night. `rows_update` writes the same values with one `UPDATE ... FROM (VALUES ...)`
per batch, on PostgreSQL and SQLite (3.33 or later) alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router, transaction
from django.db.models import Model

BATCH_ROWS = 1000


def _cast_type(field, connection) -> str:
    """The type a VALUES column is cast to on PostgreSQL: the column's own, with character
    columns as text (assigning text to varchar(n) still refuses a value that is too long)."""
    if field.get_internal_type() in ("CharField", "SlugField", "EmailField", "URLField"):
        return "text"
    return field.cast_db_type(connection)


def rows_update(
    objs: Sequence[Model], fields: Sequence[str], *, batch_rows: int = BATCH_ROWS
) -> int:
    """`Model.objects.bulk_update(objs, fields)`: each row (by its pk) takes its instance's
    values of `fields`, in one transaction; returns how many rows were updated. Signals and
    `save()` are not called, as with bulk_update."""
    if not objs:
        return 0
    if not fields:
        raise ValueError("rows_update needs at least one field to write")
    model = type(objs[0])
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    for field in columns:
        if not field.concrete or field.many_to_many or field.primary_key:
            raise ValueError(f"rows_update cannot write {model.__name__}.{field.name}")
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"

    def value(name: str, field) -> str:
        return f"CAST(v.{name} AS {_cast_type(field, connection)})" if postgres else f"v.{name}"

    # a VALUES list's columns are column1, column2, ... on PostgreSQL and SQLite alike (no CTE:
    # SQLite's driver reports no row count for a statement that starts with WITH)
    names = [f"column{i + 1}" for i in range(len(columns) + 1)]
    table = quote(meta.db_table)
    assignments = ", ".join(
        f"{quote(field.column)} = {value(names[i + 1], field)}" for i, field in enumerate(columns)
    )
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    size = max(1, min(batch_rows, connection.ops.bulk_batch_size(names, objs)))
    updated = 0
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = objs[start : start + size]
            params: list = []
            for obj in chunk:
                params.append(meta.pk.get_db_prep_value(obj.pk, connection))
                params.extend(
                    field.get_db_prep_save(getattr(obj, field.attname), connection)
                    for field in columns
                )
            cursor.execute(
                f"UPDATE {table} SET {assignments} "  # noqa: S608 - no input in the text
                f"FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
                f"WHERE {table}.{quote(meta.pk.column)} = {value(names[0], meta.pk)}",
                params,
            )
            updated += cursor.rowcount
    return updated
