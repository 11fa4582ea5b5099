"""`field__any_of=[ids]`: membership in a list of integer ids, sent as one array on PostgreSQL.

`__in` sends one placeholder a value: a queue page's 200 stamp ids were 200 values that Django
prepares and psycopg quotes and splices one by one, most of the predictions query's 3.8 ms
(bench/queue_page.py). On PostgreSQL this is `column = ANY(%s)` with the list as one array
parameter; elsewhere (SQLite) it is the same `IN (...)` as `__in`. Only integers: a value that is
not one is an error, not a silent miss.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import Lookup


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        values = []
        for value in self.rhs:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"any_of takes integer ids, not {value!r}")
            values.append(value)
        return list(dict.fromkeys(values))

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if not self.rhs:
            raise EmptyResultSet  # as `__in=[]`: matches nothing, without a query
        marks = ", ".join(["%s"] * len(self.rhs))
        return f"{lhs} IN ({marks})", [*lhs_params, *self.rhs]

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if not self.rhs:
            raise EmptyResultSet
        return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, self.rhs]


for _field in (models.IntegerField, models.ForeignKey):
    _field.register_lookup(AnyOf)
