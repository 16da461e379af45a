"""The base of every API list filter: a value the parameter's schema does not allow is a 400.

django-filter reads an empty or unknown value of a choice, UUID or boolean filter as "no filter",
which answers a list the caller did not ask for. Free-text filters keep reading empty as no filter.
Apart from `controlplane.api.common` because django-filter's DRF integration imports DRF's views,
which load the parsers that module defines.
"""

from __future__ import annotations

from django_filters import rest_framework as filters

BOOLEANS = frozenset({"true", "false"})


class FilterSet(filters.FilterSet):
    def is_valid(self) -> bool:
        valid = super().is_valid()
        wrong = False
        for name, declared in self.filters.items():
            if name not in self.data:
                continue
            value = self.data.get(name)
            if isinstance(declared, filters.BooleanFilter) and value not in BOOLEANS:
                self.form.add_error(name, "Give true or false.")
                wrong = True
            elif value == "" and not isinstance(declared, filters.CharFilter):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                wrong = True
        return valid and not wrong
