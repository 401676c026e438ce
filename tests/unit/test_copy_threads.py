"""How many connections copy: --copy-threads when given, else chosen from the
server's cores and whether the ghost's AUTO-INC lock serializes the chunks."""

import pymysql
import pytest

from console.engine.migration.copy import Copier
from console.engine.migration.copythreads import AUTO_MAX, choose, serializes, server_facts


def test_a_given_count_is_kept_whatever_the_server():
    assert choose(3, 2, True, 1) == (3, "--copy-threads")
    assert choose(1, 64, False, 2)[0] == 1


@pytest.mark.parametrize("cores,autoinc,mode,want", [
    (2, False, 1, 2),           # no AUTO_INCREMENT: one per core
    (2, True, 1, 1),            # AUTO-INC table lock for the whole INSERT ... SELECT
    (2, True, 0, 1),            # traditional: the same lock
    (2, True, 2, 2),            # interleaved: no table lock
    (16, False, 1, AUTO_MAX),   # at most AUTO_MAX
    (1, False, 2, 1),
    (None, False, 2, 1),        # cores unknown (MySQL): one
    (2, True, None, 1),         # lock mode unknown: assume the lock
])
def test_chosen_from_the_server(cores, autoinc, mode, want):
    n, why = choose(0, cores, autoinc, mode)
    assert n == want and why.startswith("chosen")


def test_serializes_only_an_autoinc_ghost_under_a_table_lock_mode():
    assert serializes(True, 1) and serializes(True, None) and not serializes(True, 2)
    assert not serializes(False, 1)


class Cursor:
    def __init__(self, answers):
        self.answers, self.row = answers, None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def execute(self, sql):
        a = self.answers[sql]
        if isinstance(a, Exception):
            raise a
        self.row = (a,)

    def fetchone(self):
        return self.row


class Conn:
    def __init__(self, answers):
        self.answers = answers

    def cursor(self):
        return Cursor(self.answers)


def test_server_facts_read_what_the_server_has():
    conn = Conn({"SELECT @@global.thread_pool_size": 2, "SELECT @@global.innodb_autoinc_lock_mode": 1})
    assert server_facts(conn) == (2, 1)
    unknown = pymysql.err.OperationalError(1193, "Unknown system variable 'thread_pool_size'")
    conn = Conn({"SELECT @@global.thread_pool_size": unknown, "SELECT @@global.innodb_autoinc_lock_mode": 2})
    assert server_facts(conn) == (None, 2)


def test_server_facts_do_not_hide_a_lost_connection():
    lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
    with pytest.raises(pymysql.err.OperationalError):
        server_facts(Conn({"SELECT @@global.thread_pool_size": lost}))


def test_the_copy_takes_turns_only_when_chunks_would_serialize():
    class Col:
        def __init__(self, ai):
            self.auto_increment = ai

    class Key:
        columns = ("id",)

    class Ins:
        ghost_columns = [Col(True)]
        key = Key()

    assert Copier(Ins(), autoinc_lock_mode=1).turns.needed
    assert not Copier(Ins(), autoinc_lock_mode=2).turns.needed
    Ins.ghost_columns = [Col(False)]
    assert not Copier(Ins(), autoinc_lock_mode=1).turns.needed
