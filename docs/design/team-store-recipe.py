"""End-to-end recipe: private PostgreSQL + moto S3 + DuckLake, no network beyond 127.0.0.1.

Run as root (initdb is run as the 'postgres' user via runuser) or as a normal user.
"""
import contextlib, glob, os, pathlib, shutil, socket, subprocess, sys, tempfile, time, urllib.request

import duckdb
import duckdb_extension_ducklake, duckdb_extension_httpfs, duckdb_extension_postgres_scanner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("apt-get install -y postgresql")
    return os.path.dirname(found[-1])


@contextlib.contextmanager
def private_postgres(user: str = "rewind"):
    bindir, port = pg_bindir(), free_port()
    root = tempfile.mkdtemp(prefix="pgtest-")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    t = time.time()
    subprocess.run(run_as + [f"{bindir}/initdb", "-D", f"{root}/data", "-U", user, "--auth=trust",
                             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], check=True, capture_output=True)
    t_init = time.time() - t
    t = time.time()
    subprocess.run(run_as + [f"{bindir}/pg_ctl", "-D", f"{root}/data", "-l", f"{root}/log", "-w", "-o",
                             f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off",
                             "start"], check=True, capture_output=True)
    t_start = time.time() - t
    print(f"postgres: initdb {t_init:.2f}s, start {t_start:.2f}s, port {port}")
    try:
        subprocess.run(["psql", f"host=127.0.0.1 port={port} user={user} dbname=postgres", "-qc",
                        "CREATE DATABASE team"], check=True)
        yield port
    finally:
        subprocess.run(run_as + [f"{bindir}/pg_ctl", "-D", f"{root}/data", "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def moto_s3():
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    t = time.time()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        print(f"moto: up in {time.time() - t:.2f}s, port {port}")
        # create the bucket with a plain path-style PUT (boto3 works too)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/team-bucket", method="PUT")
        urllib.request.urlopen(req).read()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def ext_path(mod, name: str) -> pathlib.Path:
    return pathlib.Path(mod.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"


def team_connect(pg_port: int, s3_port: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for mod, name in [(duckdb_extension_httpfs, "httpfs"), (duckdb_extension_postgres_scanner, "postgres_scanner"),
                      (duckdb_extension_ducklake, "ducklake")]:
        con.execute(f"LOAD '{ext_path(mod, name)}'")
    con.execute(f"""CREATE SECRET team_s3 (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1',
                    ENDPOINT '127.0.0.1:{s3_port}', URL_STYLE 'path', USE_SSL false)""")
    con.execute(f"""ATTACH 'ducklake:postgres:dbname=team host=127.0.0.1 port={pg_port} user=rewind' AS team
                    (DATA_PATH 's3://team-bucket/lake/')""")
    return con


CHILD = """
import sys, recipe
con = recipe.team_connect(int(sys.argv[1]), int(sys.argv[2]))
print('second process sees:', con.sql('SELECT session_id, n FROM team.sessions ORDER BY 1').fetchall())
"""

if __name__ == "__main__":
    t0 = time.time()
    with private_postgres() as pg_port, moto_s3() as s3_port:
        t = time.time()
        con = team_connect(pg_port, s3_port)
        print(f"duckdb: load 3 extensions + attach {time.time() - t:.2f}s")
        con.execute("CALL team.set_option('data_inlining_row_limit', 0)")  # force parquet files to S3
        con.execute("""CREATE TABLE team.sessions (session_id VARCHAR NOT NULL, n INTEGER,
                       created_at TIMESTAMPTZ DEFAULT now())""")
        for i in range(3):
            con.execute("BEGIN")
            con.execute("INSERT INTO team.sessions (session_id, n) VALUES (?, ?)", [f"s{i}", i])
            con.execute("COMMIT")
        out = subprocess.run([sys.executable, "-c", CHILD, str(pg_port), str(s3_port)],
                             capture_output=True, text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        print(out.stdout.strip() or out.stderr)
        print("files before merge:", con.sql("SELECT count(*) FROM ducklake_list_files('team', 'sessions')").fetchone())
        print("merge:", con.sql("CALL ducklake_merge_adjacent_files('team')").fetchall())
        print("files after merge:", con.sql("SELECT count(*) FROM ducklake_list_files('team', 'sessions')").fetchone())
        con.execute("CALL ducklake_expire_snapshots('team', older_than => now())")
        print("deleted:", len(con.sql("CALL ducklake_cleanup_old_files('team', cleanup_all => true)").fetchall()), "old files")
        print("rows:", con.sql("SELECT count(*), min(created_at)::VARCHAR FROM team.sessions").fetchone())
        con.close()
    print(f"total {time.time() - t0:.2f}s")
