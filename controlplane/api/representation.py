"""Output of read-only serializers on hot lists, without DRF's per-field machinery.

DRF's `Serializer.to_representation` asks every field, for every row, to find its attribute
(`Field.get_attribute`: a generic walk over `source_attrs` with exception handling) and to convert
it (`Field.to_representation`, through a generator of readable fields): per value that costs several
times the value itself. A page of clusters is 50 rows of 20-odd fields plus their brokers, which made
the cluster list several times slower than a plain `ModelSerializer` over the same rows.

`CompiledRepresentation` works out once per serializer instance (a `many=True` list reuses one child
for every row) how each readable field reads and converts its value, and applies that plan to each
row. Plain model values (text, numbers, booleans, JSON, UUIDs) are read with `attrgetter` and
converted with the type's own constructor, which is what DRF's fields do for them; anything else
(datetimes, nested serializers, related fields, method fields) still goes through the field's own
`to_representation`, so the output is the same, value for value (a test holds it to DRF's).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import SlugRelatedField

Converter = Callable[[Any], Any]
# (field name, how to read its value from the row, how to convert it; None: the field's own)
Step = tuple[str, Callable[[Any], Any], Converter]


def _identity(value: Any) -> Any:
    return value


# Fields whose `to_representation` is the type's constructor (or nothing at all) for a model value.
_SIMPLE: dict[type[serializers.Field], Converter] = {
    serializers.CharField: str,
    serializers.ChoiceField: _identity,  # DRF returns the stored choice value as it is
    serializers.IntegerField: int,
    serializers.BooleanField: bool,
    serializers.JSONField: _identity,
    serializers.ListField: _identity,
}


class CompiledRepresentation(serializers.Serializer):
    """Mixin for read-only serializers: `to_representation` by a plan made once per instance."""

    _plan: list[Step] | None = None

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self._plan
        if plan is None:
            plan = self._plan = [self._step(field) for field in self._readable_fields]
        data = {}
        for name, read, convert in plan:
            try:
                value = read(instance)
            except SkipField:
                continue
            data[name] = None if value is None else convert(value)
        return data

    def _step(self, field: serializers.Field) -> Step:
        if field.source == "*":
            return field.field_name, _identity, field.to_representation
        read = attrgetter(field.source) if self._is_model_field(field.source) else field.get_attribute
        kind = type(field)
        if kind in _SIMPLE:
            return field.field_name, read, _SIMPLE[kind]
        if kind is serializers.UUIDField and field.uuid_format == "hex_verbose":
            return field.field_name, read, str
        if kind is SlugRelatedField and "__" not in field.slug_field:
            return field.field_name, read, attrgetter(field.slug_field)
        return field.field_name, read, field.to_representation

    def _is_model_field(self, source: str) -> bool:
        """Whether `source` names a field of the serializer's model, which reads as a plain
        attribute (no method to call, nothing missing to default)."""
        model = getattr(getattr(self, "Meta", None), "model", None)
        if model is None or "." in source:
            return False
        try:
            field = model._meta.get_field(source)
        except FieldDoesNotExist:
            return False
        return field.concrete and not field.many_to_many
