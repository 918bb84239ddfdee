"""The answers Shopify's schema allows to the documents retsync sends, as JSON schemas for `retsync.testing.specs`.

Shopify publishes no OpenAPI file (its contract is the GraphQL schema, NOTES.md); the sandbox's SDL holds the
documented types (`retsync_connectors.shopify.schema`, checked against NOTES.md in test_emulator.py). Walking
a document's selection over that schema gives exactly the shape an answer may take: a nullable field may be
null, a list any length, an enum any of its values, so the mapping is tested against what Shopify may send
rather than what the sandbox happens to send.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    get_named_type,
    is_abstract_type,
    parse,
)

from retsync_connectors.shopify.client import versioned
from retsync_connectors.shopify.schema import sdl

SCALARS: dict[str, dict[str, Any]] = {
    "ID": {"type": "string"}, "String": {"type": "string"}, "Int": {"type": "integer", "minimum": 0},
    "Boolean": {"type": "boolean"}, "DateTime": {"type": "string", "format": "date-time"},
    "Decimal": {"type": "string", "pattern": r"-?[0-9]{1,9}\.[0-9]{2}"}, "URL": {"type": "string"},
}


VERSION = "2026-10"


def schema(version: str = VERSION) -> GraphQLSchema:
    return build_schema(sdl(version))


def answer_schema(document: str, path: list[str], version: str = VERSION) -> dict[str, Any]:
    """The JSON schema of the value at `path` (field names from the operation's root, `nodes` included) of an
    answer to `document`."""
    gql = schema(version)
    parsed = parse(versioned(document, version))
    fragments = {d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    parent: Any = gql.query_type
    selection: SelectionSetNode | None = operation.selection_set
    for name in path:
        field = next(f for f in _fields(selection, fragments, parent, gql) if f[0].name.value == name)
        node, owner = field
        parent = get_named_type(owner.fields[name].type)
        selection = node.selection_set
    return _object(selection, fragments, parent, gql)


def _fields(selection: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode], parent: Any,
            gql: GraphQLSchema) -> list[tuple[FieldNode, Any]]:
    found: list[tuple[FieldNode, Any]] = []
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            found.append((node, parent))
        elif isinstance(node, InlineFragmentNode):
            on = gql.get_type(node.type_condition.name.value) if node.type_condition else parent
            found += _fields(node.selection_set, fragments, on, gql)
        elif isinstance(node, FragmentSpreadNode):
            fragment = fragments[node.name.value]
            found += _fields(fragment.selection_set, fragments, gql.get_type(fragment.type_condition.name.value), gql)
    return found


def _object(selection: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode], parent: Any,
            gql: GraphQLSchema) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for node, owner in _fields(selection, fragments, parent, gql):
        name = node.name.value
        field_type = owner.fields[name].type
        properties[name] = _value(field_type, node, fragments, gql)
        conditional = owner is not parent and is_abstract_type(parent)
        if isinstance(field_type, GraphQLNonNull) and not conditional:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _value(field_type: Any, node: FieldNode, fragments: dict[str, FragmentDefinitionNode],
           gql: GraphQLSchema) -> dict[str, Any]:
    nullable = not isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(inner, GraphQLList):
        found: dict[str, Any] = {"type": "array", "items": _value(inner.of_type, node, fragments, gql)}
    elif isinstance(inner, GraphQLEnumType):
        found = {"enum": list(inner.values)}
    elif isinstance(inner, GraphQLObjectType) or is_abstract_type(inner):
        found = _object(node.selection_set, fragments, inner, gql)
    else:
        found = dict(SCALARS[inner.name])
    return {**found, "nullable": True} if nullable else found
