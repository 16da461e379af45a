"""The OpenAPI schema's operations, with the error answers every operation can give.

Apart from `controlplane.api.common` because DRF loads this class while reading its settings, before
the parsers and pagination that module defines can be imported.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from controlplane.api.common import ERRORS, StrictSerializer


class AutoSchema(SpectacularAutoSchema):
    """Documents the error answers every operation can give, besides those a view names itself."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    ERRORS[code], str(code), direction=direction
                )
        return responses

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False  # unknown fields are refused, not ignored
        return schema

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter.get("in") == "query" and schema.get("type") == "string" and len(schema) == 1:
                # Free text: anything but NUL, which Django refuses (and PostgreSQL cannot store).
                schema["pattern"] = "^[^\\x00]*$"
        return parameters

    def _error_codes(self) -> list[int]:
        method = self.method.upper()
        has_body = method in ("POST", "PUT", "PATCH")
        codes = [401, 429]
        if has_body or self._has_query_parameters():
            codes.append(400)
        if has_body:
            codes += [413, 415]
        if method not in ("GET", "HEAD", "OPTIONS"):
            codes.append(403)
        if "{" in self.path:
            codes.append(404)
        return codes

    def _has_query_parameters(self) -> bool:
        parameters = self._get_parameters()
        return any(parameter.get("in") == "query" for parameter in parameters)
