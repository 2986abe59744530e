"""What make_engine() (migrations/settings.py) changes in how the driver connects: on PyMySQL,
one TLS context for every connection whose URL sets no TLS option, instead of a new one
each time (PyMySQL 1.2's PREFERRED mode loads the system's CA store for each: ~20 ms), and
TLS still used wherever the server offers it."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import URL, text
from sqlalchemy.exc import OperationalError

from migrations.settings import make_engine
from proofs.test_all_tenants import another_server, missing


@pytest.fixture
def pymysql_url(database_url: URL) -> URL:
    if database_url.get_driver_name() != "pymysql":
        pytest.skip(f"the database under test is reached through {database_url.get_driver_name()}, not PyMySQL")
    return database_url


def driver_connection(url: URL):
    engine = make_engine(url)
    connection = engine.connect()
    return engine, connection, connection.connection.dbapi_connection


def test_pymysql_connections_without_tls_options_share_one_context(pymysql_url: URL):
    first_engine, first, first_driver = driver_connection(pymysql_url)
    second_engine, second, second_driver = driver_connection(pymysql_url)
    try:
        context = getattr(first_driver, "ctx", None)
        if context is None:
            pytest.skip("this PyMySQL builds no TLS context for a URL without TLS options (before 1.2)")
        assert second_driver.ctx is context  # two engines, two connections: one context
        # PyMySQL's PREFERRED settings, as it would have made them for each connection
        assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
        assert context.verify_flags & ssl.VERIFY_X509_STRICT == 0
        assert first.execute(text("SELECT 1")).scalar() == 1 and second.execute(text("SELECT 2")).scalar() == 2
    finally:
        for closing in (first.close, second.close, first_engine.dispose, second_engine.dispose):
            closing()


def test_pymysql_tls_options_still_get_a_context_of_their_own(pymysql_url: URL):
    """A URL that asks for TLS (here: verify the server's certificate) is PyMySQL's as before:
    TLS required, a context of its own with those settings. Made as the engine makes its
    connections (its do_connect listeners), without connecting (PyMySQL's defer_connect):
    this test's server need not offer TLS."""
    engine = make_engine(pymysql_url)
    _, shared_connection, shared_driver = driver_connection(pymysql_url)
    try:
        arguments, options = engine.dialect.create_connect_args(pymysql_url)
        options |= {"ssl_verify_cert": True, "defer_connect": True}
        listeners = engine.dialect.dispatch.do_connect
        made = [connect(engine.dialect, None, list(arguments), dict(options)) for connect in listeners]
        assert len(made) == 1 and made[0] is not None  # make_engine's, in place of PyMySQL's connect
        own = made[0]
        assert own.ctx is not getattr(shared_driver, "ctx", None)
        assert own.ctx.verify_mode == ssl.CERT_REQUIRED
        assert own._ssl_required  # PyMySQL will not go on without TLS, as before
    finally:
        shared_connection.close()
        engine.dispose()


def test_pymysql_connections_to_a_server_that_offers_tls_use_it_with_the_one_context(pymysql_url: URL, dialect: str):
    """Against a MariaDB that offers TLS (a second server, with a self-signed certificate),
    every connection of make_engine() whose URL sets no TLS option negotiates TLS, all with the
    one context; a URL that asks to verify the certificate is refused, as PyMySQL refuses it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("no openssl to make the server's certificate")
    folder = Path(tempfile.mkdtemp(prefix="tls-"))  # not under pytest's: the server's user reads it
    key, certificate = folder / "key.pem", folder / "cert.pem"
    try:
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
            + ["-keyout", str(key), "-out", str(certificate)],
            check=True,
            capture_output=True,
        )
        folder.chmod(0o755)
        key.chmod(0o644)
        with another_server(pymysql_url, dialect, f"--ssl-cert={certificate}", f"--ssl-key={key}") as url:
            engines = [make_engine(url) for _ in range(2)]
            connections = [engine.connect() for engine in engines]
            try:
                drivers = [connection.connection.dbapi_connection for connection in connections]
                assert all(isinstance(driver._sock, ssl.SSLSocket) for driver in drivers)  # TLS, as offered
                assert drivers[0].ctx is drivers[1].ctx
                ciphers = [c.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1] for c in connections]
                assert all(ciphers), ciphers
            finally:
                for connection, engine in zip(connections, engines, strict=True):
                    connection.close()
                    engine.dispose()
            verifying = make_engine(url.update_query_dict({"ssl_verify_cert": "true"}))
            with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
                verifying.connect()
            verifying.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
