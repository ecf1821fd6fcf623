package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/regmigrate/regmigrate/tests/kubeapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// Postgres is the workflow archive's database.
type Postgres struct {
	Host               string // 127.0.0.1 (the controller runs on the host)
	Port               int
	Database, User     string
	Password           string
	SocketDir, DataDir string
}

// Query runs SQL through psql as the archive's user and returns the rows,
// one a line, columns separated by |.
func (p Postgres) Query(ctx context.Context, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, "psql", "-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", p.User, "-d", p.Database,
		"-v", "ON_ERROR_STOP=1", "-Atc", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, out)
	}
	return string(out), nil
}

// startStores starts the artifact repository (gofakes3 on the node's
// address, its objects in <Dir>/s3.db) and PostgreSQL (on loopback).
func (n *Node) startStores(ctx context.Context) error {
	s3bin, err := n.buildFakeS3(ctx)
	if err != nil {
		return err
	}
	port, err := regtest.FreePort(NodeIP)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(NodeIP, strconv.Itoa(port))
	if err := n.start("fakes3", exec.Command(s3bin, "-addr", addr, "-db", filepath.Join(n.Dir, "s3.db"), "-bucket", S3Bucket)); err != nil {
		return err
	}
	n.S3 = "http://" + addr
	if err := waitUntil(ctx, "fakes3", 30*time.Second, func() error { return get(n.S3 + "/") }); err != nil {
		return err
	}
	return n.startPostgres(ctx)
}

// buildFakeS3 builds tests/cluster/fakes3 (its own module) into <Dir>/bin.
func (n *Node) buildFakeS3(ctx context.Context) (string, error) {
	src, err := sourceDir("fakes3")
	if err != nil {
		return "", err
	}
	out := filepath.Join(n.Dir, "bin", "fakes3")
	log, err := os.Create(filepath.Join(n.Dir, "build-fakes3.log"))
	if err != nil {
		return "", err
	}
	defer log.Close()
	return out, kubeapi.GoCommand(ctx, src, log, nil, "build", "-trimpath", "-o", out, ".")
}

// sourceDir is a folder of this package's source (the test's working
// folder is the package's; the node command's, anywhere in the module).
func sourceDir(name string) (string, error) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/regmigrate/regmigrate/tests/cluster").Output()
	if err != nil {
		return "", fmt.Errorf("locating tests/cluster (run inside regmigrate's checkout): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), name), nil
}

// postgresBin finds a PostgreSQL server program (Debian keeps them in
// /usr/lib/postgresql/<major>/bin, the newest major wins).
func postgresBin(name string) (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	if len(dirs) > 0 {
		return dirs[0], nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("PostgreSQL's %s not found: apt-get install -y postgresql", name)
}

func pgMajor(p string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return v
}

// startPostgres initializes a database cluster in the runtime folder (the
// postgres user must reach it, and the state folder may be under root's
// home), starts it on a free loopback port as the postgres user and creates
// the archive's role and database.
func (n *Node) startPostgres(ctx context.Context) error {
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("no postgres user (apt-get install -y postgresql creates it): %w", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	initdb, err := postgresBin("initdb")
	if err != nil {
		return err
	}
	server, err := postgresBin("postgres")
	if err != nil {
		return err
	}
	p := Postgres{Host: "127.0.0.1", Database: "argo", User: "argo", Password: randomHex(12),
		SocketDir: filepath.Join(RuntimeDir, "postgres"), DataDir: filepath.Join(RuntimeDir, "postgres", "data")}
	if p.Port, err = regtest.FreePort("127.0.0.1"); err != nil {
		return err
	}
	if err := os.MkdirAll(p.SocketDir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(p.SocketDir, uid, gid); err != nil {
		return err
	}
	asPostgres := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = p.SocketDir
		return cmd
	}
	if out, err := asPostgres(exec.CommandContext(ctx, initdb, "-D", p.DataDir, "-U", "postgres",
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	// The command line names the state folder so that Down recognizes the PID.
	if err := n.start("postgres", asPostgres(exec.Command(server, "-D", p.DataDir, "-k", p.SocketDir,
		"-h", p.Host, "-p", strconv.Itoa(p.Port), "-c", "fsync=off", "-c", "cluster_name=regmigrate-e2e:"+n.Dir))); err != nil {
		return err
	}
	psql := func(sql string) error {
		_, err := run(ctx, "psql", "-h", p.SocketDir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)
		return err
	}
	if err := waitUntil(ctx, "postgres", 30*time.Second, func() error { return psql("SELECT 1") }); err != nil {
		return err
	}
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", p.User, p.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", p.Database, p.User),
	} {
		if err := psql(sql); err != nil {
			return err
		}
	}
	n.Postgres = p
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
