"""The deploy lint's table of rules x databases x measured behaviour (README "Safe deploys").

Bakes a project per server, runs the template's proof of the lint's claims in it
(tests/proofs/test_deploy_rules_measured.py: each rule's operation on a table with rows while a
second connection reads and writes) with ``DEPLOY_LINT_TABLE`` set, so that each measurement is
written down, and prints them as a Markdown table. The proof must pass: a claim the servers
contradict fails it, and no table is printed.

    python benchmarks/deploy_lint_table.py            # PostgreSQL and MariaDB
    python benchmarks/deploy_lint_table.py --database postgresql

Servers: ``TEST_POSTGRESQL_URL`` and ``TEST_MYSQL_URL``, as the template's tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_create_db import SERVERS, bake  # noqa: E402

PROOFS = Path(__file__).resolve().parent.parent / "tests" / "proofs"


def measured(database: str, folder: Path) -> list[dict]:
    project = bake(folder / database, database)
    shutil.copytree(PROOFS, project / "proofs", ignore=shutil.ignore_patterns("__pycache__"))
    table = folder / f"{database}.jsonl"
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "PYTHONPATH")}
    env.update(TEST_DATABASE_URL=SERVERS[database], DEPLOY_LINT_TABLE=str(table), CI="true")
    command = [sys.executable, "-m", "pytest", "proofs/test_deploy_rules_measured.py", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise SystemExit(f"the measured claims do not hold on {database}:\n{result.stdout[-4000:]}")
    return [json.loads(line) for line in table.read_text().splitlines()]


def cell(row: dict | None) -> str:
    if row is None:
        return "-"
    blocked = [name for name, key in (("reads", "blocks_reads"), ("writes", "blocks_writes")) if row[key]]
    parts = [row["lock"] or row["asked"] or ""]
    parts.append(f"blocks {' and '.join(blocked)}" if blocked else "blocks neither")
    if row["rewrites"]:
        parts.append("rewrites")
    parts.append(f"{row['seconds_empty'] * 1000:.1f} → {row['seconds_full'] * 1000:.0f} ms")
    return "; ".join(part for part in parts if part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "mysql", "all"], default="all")
    options = parser.parse_args(argv)
    databases = ["postgresql", "mysql"] if options.database == "all" else [options.database]
    with tempfile.TemporaryDirectory(prefix="deploy-lint-table-") as folder:
        rows = {database: measured(database, Path(folder)) for database in databases}
    cases: dict[str, dict] = {}
    for database, found in rows.items():
        for row in found:
            cases.setdefault(row["case"], {"rule": row["rule"]})[database] = row
    names = {"postgresql": "PostgreSQL 15 (lock; the time on an empty table → 200,000 rows)",
             "mysql": "MariaDB 10.11 (its answer on an empty copy; → 300,000 rows)"}  # fmt: skip
    print("| operation | rule | " + " | ".join(names[database] for database in databases) + " |")
    print("|---|---|" + "---|" * len(databases))
    for case, row in cases.items():
        rule = f"`{row['rule']}`" if row["rule"] else "(not reported)"
        print(f"| {case} | {rule} | " + " | ".join(cell(row.get(database)) for database in databases) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
