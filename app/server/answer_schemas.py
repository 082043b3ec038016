"""Models of how an answer is shaped: ``response_format``, url_citation annotations, usage calls.

The request's ``response_format`` (OpenAI's shape, with the client's JSON Schema checked
and bounded) and the response's extensions that :mod:`app.server.answer_format` fills.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.llm.json_schemas import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, schema_problem

__all__ = ["Annotation", "JsonSchemaFormat", "ModelCallUsage", "ResponseFormat", "UrlCitation"]


class JsonSchemaFormat(BaseModel):
    """The ``json_schema`` of a ``response_format``: the client's schema for the answer."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = Field(default=None, max_length=4096)
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description=f"A JSON Schema (draft 2020-12) of at most {MAX_SCHEMA_BYTES} bytes and "
        f"{MAX_SCHEMA_DEPTH} levels of nesting.",
    )
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _usable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = None if value is None else schema_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``: free text, one JSON object, or JSON for a schema."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is required with type json_schema, and only then")
        return self

    def spec(self) -> dict[str, Any] | None:
        """The format as the model gets it; None for free text."""
        if self.type == "text":
            return None
        return self.model_dump(by_alias=True, exclude_none=True)


class UrlCitation(BaseModel):
    """Where a citation label sits in the content, and the source it names."""

    start_index: int
    end_index: int
    title: str
    url: str = Field(description="The source's URL, or its path as indexed.")


class Annotation(BaseModel):
    """OpenAI's ``url_citation`` annotation."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class ModelCallUsage(BaseModel):
    """One model call of the turn."""

    role: Literal["answer", "router", "memory", "summary", "repair"]
    model: str = Field(description="The model's name (never its server's address).")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
