"""Cookbook recipe 4, replaceable objects: views and stored functions as ``op.*`` operations.

A replaceable object is created and dropped whole. A revision declares it once::

    customer_view = ReplaceableObject("customer_view", "SELECT name FROM customer")

    def upgrade():
        op.create_view(customer_view)

and a later revision that changes it names the revision holding the previous
definition, so its downgrade can put that definition back::

    op.replace_view(customer_view, replaces="28af9800143f.customer_view")      # upgrade
    op.replace_view(customer_view, replace_with="28af9800143f.customer_view")  # downgrade

env.py imports this module, which registers ``op.create_view``, ``op.drop_view``,
``op.replace_view``, ``op.create_sp``, ``op.drop_sp`` and ``op.replace_sp``.
Differences from the cookbook's sketch: ``DropViewOp.reverse`` works, a bad
``"<rev>.<name>"`` reference is a one-line error naming it, a name may be
schema-qualified, and a kind the database lacks is an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alembic.operations import MigrateOperation, Operations
from alembic.script.revision import RevisionError
from alembic.util import CommandError


@dataclass(frozen=True)
class ReplaceableObject:
    """A named piece of SQL for a CREATE statement: a view's SELECT, a function's body."""

    name: str
    sqltext: str


class ReversibleOp(MigrateOperation):
    """Create or drop one ReplaceableObject; ``replace`` drops the old and creates the new."""

    kind: ClassVar[str] = "object"
    dialects: ClassVar[frozenset[str]] = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})

    def __init__(self, target: ReplaceableObject) -> None:
        self.target = target

    @classmethod
    def invoke_for_target(cls, operations: Operations, target: ReplaceableObject):
        return operations.invoke(cls(target))

    def reverse(self) -> ReversibleOp:
        raise NotImplementedError()

    @classmethod
    def _get_object_from_version(cls, operations: Operations, ident: str) -> ReplaceableObject:
        """The object ``"<revision>.<name>"`` refers to; the name may be schema-qualified."""
        version, _, name = ident.partition(".")
        if not version or not name:
            raise CommandError(f"{ident!r}: expected '<revision>.<name>', e.g. '28af9800143f.customer_view'.")
        try:
            revision = operations.get_context().script.get_revision(version)
        except (CommandError, RevisionError):
            revision = None
        if revision is None:
            raise CommandError(f"{ident!r}: there is no revision {version!r} in this migration history.")
        found = getattr(revision.module, name, None)
        if not isinstance(found, ReplaceableObject):  # "public.customer_view": match by object name
            found = next(
                (
                    value
                    for value in vars(revision.module).values()
                    if isinstance(value, ReplaceableObject) and value.name.partition("(")[0].strip() == name
                ),
                None,
            )
        if found is None:
            raise CommandError(f"{ident!r}: revision {version} defines no ReplaceableObject {name!r}.")
        return found

    @classmethod
    def replace(cls, operations: Operations, target: ReplaceableObject, replaces=None, replace_with=None):
        if replaces:
            old = cls._get_object_from_version(operations, replaces)
            drop_old, create_new = cls(old).reverse(), cls(target)
        elif replace_with:
            old = cls._get_object_from_version(operations, replace_with)
            drop_old, create_new = cls(target).reverse(), cls(old)
        else:
            raise TypeError("replaces or replace_with is required")
        operations.invoke(drop_old)
        operations.invoke(create_new)


@Operations.register_operation("create_view", "invoke_for_target")
@Operations.register_operation("replace_view", "replace")
class CreateViewOp(ReversibleOp):
    kind = "view"

    def reverse(self) -> ReversibleOp:
        return DropViewOp(self.target)


@Operations.register_operation("drop_view", "invoke_for_target")
class DropViewOp(ReversibleOp):
    kind = "view"

    def reverse(self) -> ReversibleOp:
        return CreateViewOp(self.target)


@Operations.register_operation("create_sp", "invoke_for_target")
@Operations.register_operation("replace_sp", "replace")
class CreateSPOp(ReversibleOp):
    kind = "stored function"
    dialects = frozenset({"postgresql", "mysql", "mariadb"})

    def reverse(self) -> ReversibleOp:
        return DropSPOp(self.target)


@Operations.register_operation("drop_sp", "invoke_for_target")
class DropSPOp(ReversibleOp):
    kind = "stored function"
    dialects = frozenset({"postgresql", "mysql", "mariadb"})

    def reverse(self) -> ReversibleOp:
        return CreateSPOp(self.target)


def _run(operations: Operations, operation: ReversibleOp, sql: str) -> None:
    dialect = operations.get_context().dialect.name
    if dialect not in operation.dialects:
        raise CommandError(
            f"{type(operation).__name__} on {operation.target.name!r}: "
            f"a {operation.kind} is not supported on {dialect}."
        )
    operations.execute(sql)


@Operations.implementation_for(CreateViewOp)
def create_view(operations: Operations, operation: CreateViewOp) -> None:
    _run(operations, operation, f"CREATE VIEW {operation.target.name} AS {operation.target.sqltext}")


@Operations.implementation_for(DropViewOp)
def drop_view(operations: Operations, operation: DropViewOp) -> None:
    _run(operations, operation, f"DROP VIEW {operation.target.name}")


@Operations.implementation_for(CreateSPOp)
def create_sp(operations: Operations, operation: CreateSPOp) -> None:
    _run(operations, operation, f"CREATE FUNCTION {operation.target.name} {operation.target.sqltext}")


@Operations.implementation_for(DropSPOp)
def drop_sp(operations: Operations, operation: DropSPOp) -> None:
    _run(operations, operation, f"DROP FUNCTION {operation.target.name}")
