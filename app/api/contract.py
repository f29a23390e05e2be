"""The JSON API's contract in one place: pydantic models and the operations that use them.

Request models (``In``) validate what a client sends and say, per field, the message a refused value gets;
response models (``Out``) describe what the API answers. Each route module declares its operations with
:func:`operation` next to its views, and :func:`document` builds ``/api/v1/openapi.json`` from those
declarations and the models' JSON Schema, so the document and the validation cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError, PydanticUseDefault

from app.validation import US_STATES

MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL
_REF = "#/components/schemas/{model}"
REFUSED = "refused"
# A US state code or DC, either case ("tx" is TX): the same list the services check against.
STATE_CODE = "^(" + "|".join(f"[{a.upper()}{a.lower()}][{b.upper()}{b.lower()}]" for a, b in sorted(US_STATES)) + ")$"


def refuse(message: str) -> PydanticCustomError:
    """A validator's refusal with the API's own message (reported as it is)."""
    return PydanticCustomError(REFUSED, message)


class In(BaseModel):
    """A request body or query string. ``messages`` maps a field (``holder.zip`` for nested ones) to the
    message its refused value gets; ``"*"`` is the message for an unknown field when extras are forbidden."""

    model_config = ConfigDict(extra="ignore")
    messages: ClassVar[dict[str, str | dict[str, str]]] = {}


class Out(BaseModel):
    """A response body, for the document (the views build the JSON; the contract test checks them)."""


class Error(Out):
    """Every refusal: a message a person can read."""

    error: str


class ValidationError_(Out):
    model_config = ConfigDict(title="ValidationError")
    error: str
    fields: dict[str, str] = Field(description="Field path (e.g. holder.zip) -> message")
    existing_id: int | None = Field(None, description="409 on a taken customer number: its id")


# -- field types ------------------------------------------------------------------------------------

def _strict_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an integer")
    return value


def _query_int(value: Any) -> Any:
    """A query-string number: ASCII digits only (``"²".isdigit()`` is true; ``"+5"`` and ``"5.0"`` are not
    numbers here); blank is "not given"."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise PydanticUseDefault()
        if not (text.isascii() and text.isdigit()):
            raise ValueError("not a whole number")
        return int(text)
    return _strict_int(value)


def _query_date(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise PydanticUseDefault()
        return date.fromisoformat(text)
    raise ValueError("not a date")


def _json_date(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("not_text", "not a date string")
    return date.fromisoformat(value.strip())


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError("not_text", "not text")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("blank")
    return value


def _state_code(value: str) -> str:
    if value.strip().upper() not in US_STATES:
        raise PydanticCustomError("state", "not a US state code")
    return value


JsonInt = Annotated[int, BeforeValidator(_strict_int)]
QueryInt = Annotated[int, BeforeValidator(_query_int)]
QueryDate = Annotated[date, BeforeValidator(_query_date)]
JsonDate = Annotated[date, BeforeValidator(_json_date)]
Text = Annotated[str, BeforeValidator(_text)]
RequiredText = Annotated[str, BeforeValidator(_text), AfterValidator(_not_blank),
                         Field(min_length=1, pattern=r"\S")]
Id = Annotated[JsonInt, Field(ge=1, le=MAX_ID)]
# A US state code or DC in either case; surrounding spaces are forgiven. A refusal is of kind "state".
StateCode = Annotated[str, BeforeValidator(_text), AfterValidator(_state_code),
                      Field(json_schema_extra={"pattern": STATE_CODE})]


def parse(model: type[In], data: Any) -> tuple[Any, dict[str, str]]:
    """``(instance, {})`` for data the model accepts, else ``(None, {field: message})`` with the model's
    messages (pydantic's own wording only where the model names none)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for problem in exc.errors():
            path = ".".join(str(p) for p in problem["loc"] if not isinstance(p, int))
            key, message = _message(model, path, problem["type"], problem["msg"])
            errors.setdefault(key, message)
        return None, errors


def _message(model: type[In], path: str, kind: str, text: str = "") -> tuple[str, str]:
    if kind == REFUSED:  # a validator's own message, already in the API's words
        return path, text
    if kind == "extra_forbidden" and "*" in model.messages:
        return path, model.messages["*"]
    parts = path.split(".")
    for end in range(len(parts), 0, -1):  # the most specific message given: holder.zip, then holder
        key = ".".join(parts[:end])
        if key in model.messages:
            message = model.messages[key]
            if isinstance(message, dict):  # by kind of problem: {"not_text": ..., "*": ...}
                message = message.get(kind, message["*"])
            return key, message
    return path, "This value is not valid."


def query_dict(args) -> dict[str, str]:
    """A query string as the models read it: the first value of each name."""
    return {name: args.get(name) for name in args}


# -- operations -------------------------------------------------------------------------------------

@dataclass
class Reply:
    description: str
    model: Any = None  # an Out model, a JSON Schema dict, or None for no body
    media: str = "application/json"
    headers: dict | None = None


@dataclass
class Operation:
    path: str
    method: str
    summary: str
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[In] | None = None
    params: list[dict] = field(default_factory=list)
    replies: dict[int, Reply] = field(default_factory=dict)
    public: bool = False


OPERATIONS: list[Operation] = []
EXTRA: list[type[BaseModel]] = []  # models a document-only schema refers to by name


def extra_components(*models: type[BaseModel]) -> None:
    EXTRA.extend(models)
BEARER = [{"bearer": []}]


def operation(method: str, path: str, *, summary: str, description: str = "", body: type[BaseModel] | None = None,
              query: type[In] | None = None, params: list[dict] | None = None, replies: dict[int, Reply],
              public: bool = False):
    """Declare one operation of ``/api/v1``; used as a decorator on its view (which it leaves as it is)."""
    OPERATIONS.append(Operation(f"/api/v1{path}", method.lower(), summary, description, body, query,
                                list(params or []), dict(replies), public))

    def decorator(view):
        return view

    return decorator


def ok(model: Any, description: str) -> Reply:
    return Reply(description, model)


def refused(description: str, model: type[Out] = Error) -> Reply:
    return Reply(description, model)


UNAUTHORIZED = {401: refused("Missing or invalid token")}


def path_id(name: str = "id") -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def header(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "header", "required": False, "schema": schema,
            **({"description": description} if description else {})}


# -- the document -----------------------------------------------------------------------------------

def _clean(node: Any) -> Any:
    """Drop pydantic's generated titles (a property *named* title stays: its value is a schema) and the
    ``default: null`` of optional fields (leaving a field out is what the document's ``required`` says)."""
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items()
                if not (k == "title" and isinstance(v, str)) and not (k == "default" and v is None)}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _model_name(model: type[BaseModel]) -> str:
    return model.__name__


def _titled() -> dict[str, str]:
    """Class name -> published name, for models whose class name had to differ (``title`` in their config)."""
    names, todo = {}, [In, Out]
    while todo:
        model = todo.pop()
        todo.extend(model.__subclasses__())
        title = model.model_config.get("title")
        if title and title != model.__name__:
            names[model.__name__] = title
    return names


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """Every ``$ref`` to a renamed model pointed at its published name."""
    if isinstance(node, dict):
        return {k: _renamed(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    if isinstance(node, str) and node.startswith("#/components/schemas/"):
        name = node.rsplit("/", 1)[1]
        return f"#/components/schemas/{names.get(name, name)}"
    return node


def _query_params(model: type[In]) -> list[dict]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _clean(dict(prop))
        description = prop.pop("description", "")
        if prop.get("default", 0) is None:
            del prop["default"]
        params.append({"name": name, "in": "query", "required": name in required, "schema": prop,
                       **({"description": description} if description else {})})
    return params


def document() -> dict:
    """The OpenAPI 3.1 document, built from :data:`OPERATIONS` and their models."""
    models: dict[type[BaseModel], str] = {}

    def use(model: Any, mode: str) -> dict:
        if isinstance(model, dict):
            return model
        models.setdefault(model, mode)
        return {"$ref": _REF.format(model=_model_name(model))}

    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {"summary": op.summary}
        if op.description:
            entry["description"] = op.description
        if not op.public:
            entry["security"] = BEARER
        params = list(op.params) + (_query_params(op.query) if op.query else [])
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": use(op.body, "validation")}}}
        replies = dict(op.replies)
        if 403 in replies and 404 not in replies:  # api_requires answers a customer user's token 404, not 403
            replies[404] = refused("Not found (a customer user's token, where its role has no access)")
        responses = {}
        for status, reply in sorted(replies.items()):
            answer: dict[str, Any] = {"description": reply.description}
            if reply.model is not None:
                answer["content"] = {reply.media: {"schema": use(reply.model, "serialization")}}
            elif reply.media != "application/json":
                answer["content"] = {reply.media: {"schema": {"type": "string", "format": "binary"}}}
            if reply.headers:
                answer["headers"] = reply.headers
            responses[str(status)] = answer
        entry["responses"] = responses
        paths.setdefault(op.path, {})[op.method] = entry
    for model in EXTRA:
        use(model, "validation")
    _, schemas = models_json_schema([(m, mode) for m, mode in models.items()], ref_template=_REF)
    names = _titled()
    components = {names.get(k, k): v for k, v in _renamed(_clean(schemas.get("$defs", {})), names).items()}
    paths = _renamed(paths, names)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CertDesk API", "version": "1.0.0"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": components},
    }
