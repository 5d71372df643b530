package remote

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/infer/types"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"

	"odoo-pulumi/testbed/command-provider/internal/run"
)

func sp(s string) *string { return &s }
func ip(i int) *int       { return &i }

// The backoff is upstream's: 100 ms x1.5 capped at 5 s, so the default 10 allowed errors
// wait ~11 s in all, which is what the project's dialErrorLimit figures are based on.
func TestDelaySequence(t *testing.T) {
	want := []time.Duration{100, 150, 225, 337, 506}
	for i, w := range want {
		got := delay(i+1).Round(time.Millisecond) / time.Millisecond
		if got != w && got != w+1 {
			t.Errorf("delay(%d) = %d ms, want %d ms", i+1, got, w)
		}
	}
	if delay(12) != maxDelay || delay(100) != maxDelay {
		t.Errorf("delay is not capped at %v: %v", maxDelay, delay(12))
	}
	var total time.Duration
	for n := 1; n <= defaultDialErrorLimit; n++ {
		total += delay(n)
	}
	if total < 11*time.Second || total > 12*time.Second {
		t.Errorf("10 allowed errors sleep %v in all, want ~11.3 s", total)
	}
}

// dialErrorLimit is the number of errors allowed: limit+1 attempts, a sleep between two;
// -1 retries until the host answers.
func TestRetryAttemptsAndSleeps(t *testing.T) {
	refused := errors.New("connection refused")
	for _, tc := range []struct {
		limit, succeedAt, wantAttempts int
		wantErr                        bool
	}{
		{limit: 10, wantAttempts: 11, wantErr: true},
		{limit: 3, wantAttempts: 4, wantErr: true},
		{limit: 0, wantAttempts: 1, wantErr: true},
		{limit: -1, succeedAt: 60, wantAttempts: 60},
		{limit: 3, succeedAt: 4, wantAttempts: 4},
	} {
		attempts := 0
		var slept []time.Duration
		var statuses int
		_, err := retry(context.Background(), tc.limit,
			func(context.Context) (int, error) {
				attempts++
				if attempts == tc.succeedAt {
					return 1, nil
				}
				return 0, refused
			},
			func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil },
			func(int, error) { statuses++ })
		if (err != nil) != tc.wantErr || attempts != tc.wantAttempts {
			t.Errorf("limit %d: %d attempts, err %v; want %d attempts, error %v",
				tc.limit, attempts, err, tc.wantAttempts, tc.wantErr)
		}
		if len(slept) != attempts-1 || statuses != attempts-1 {
			t.Errorf("limit %d: %d sleeps, %d status lines for %d attempts", tc.limit, len(slept), statuses, attempts)
		}
		if tc.wantErr && !errors.Is(err, refused) {
			t.Errorf("limit %d: the error %v does not carry the last dial error", tc.limit, err)
		}
	}
}

// A permanent error (wrong host key, unusable key) is reported at once, whatever the limit.
func TestRetryStopsOnPermanentError(t *testing.T) {
	attempts := 0
	_, err := retry(context.Background(), -1,
		func(context.Context) (int, error) { attempts++; return 0, permanent(errors.New("bad host key")) },
		func(context.Context, time.Duration) error { return nil }, nil)
	if err == nil || attempts != 1 || err.Error() != "bad host key" {
		t.Errorf("attempts %d, err %v", attempts, err)
	}
}

// A cancelled operation (Pulumi's custom timeout, Ctrl-C) stops the waiting.
func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := retry(ctx, -1, func(context.Context) (int, error) { return 0, errors.New("refused") }, sleepCtx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func connTo(addr string, limit int) Connection {
	host, port, _ := net.SplitHostPort(addr)
	p := 0.0
	for _, c := range port {
		p = p*10 + float64(c-'0')
	}
	return Connection{Host: host, Port: &p, Password: sp("pw"), DialErrorLimit: &limit}
}

// Against a refused port, dialErrorLimit 2 gives up after 3 attempts and two sleeps
// (0.1 + 0.15 s), with the refusal in the error.
func TestDialRefusedPortGivesUp(t *testing.T) {
	addr := freePort(t)
	start := time.Now()
	var statuses []string
	_, _, err := dial(context.Background(), connTo(addr, 2), func(s string) { statuses = append(statuses, s) })
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "connection refused") ||
		!strings.HasPrefix(err.Error(), "after 2 failed attempts: ") {
		t.Fatalf("err = %v", err)
	}
	if elapsed < 240*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("gave up after %v, want ~0.25 s", elapsed)
	}
	if want := []string{"Dial 1/2 failed: retrying", "Dial 2/2 failed: retrying"}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("status lines %q, want upstream's %q", statuses, want)
	}
}

// The retry line names the dialErrorLimit as upstream does, "inf" when unlimited.
func TestDialStatusLine(t *testing.T) {
	for _, tc := range []struct {
		n, limit int
		want     string
	}{
		{1, 10, "Dial 1/10 failed: retrying"},
		{10, 10, "Dial 10/10 failed: retrying"},
		{7, -1, "Dial 7/inf failed: retrying"},
	} {
		if got := dialStatus(tc.n, tc.limit); got != tc.want {
			t.Errorf("dialStatus(%d, %d) = %q, want %q", tc.n, tc.limit, got, tc.want)
		}
	}
}

// A host that comes up later (a booting server) is waited for.
func TestDialWaitsForLateServer(t *testing.T) {
	addr := freePort(t)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		if _, err := startTestServerAt(t, addr); err != nil {
			t.Errorf("late server: %v", err)
		}
	}()
	start := time.Now()
	client, closeClient, err := dial(context.Background(), connTo(addr, 50), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	closeClient()
	_ = client
	if time.Since(start) < 1500*time.Millisecond {
		t.Errorf("connected after %v, before the server started", time.Since(start))
	}
}

// hostKey, when set, is checked, and a mismatch is not retried; proxy is refused clearly.
func TestHostKeyAndProxy(t *testing.T) {
	s := startTestServer(t)
	good := s.connectionTo(t)
	good.HostKey = sp(string(ssh.MarshalAuthorizedKey(s.hostKey)))
	_, closeClient, err := dial(context.Background(), good, nil)
	if err != nil {
		t.Fatalf("dial with the right host key: %v", err)
	}
	closeClient()

	other := startTestServer(t)
	bad := s.connectionTo(t)
	bad.HostKey = sp(string(ssh.MarshalAuthorizedKey(other.hostKey)))
	bad.DialErrorLimit = ip(-1)
	start := time.Now()
	_, _, err = dial(context.Background(), bad, nil)
	if err == nil || !strings.Contains(err.Error(), "is not connection.hostKey") || time.Since(start) > 2*time.Second {
		t.Errorf("wrong host key: err %v after %v", err, time.Since(start))
	}

	proxied := s.connectionTo(t)
	proxied.Proxy = &ProxyConnection{Host: "bastion"}
	if _, _, err := dial(context.Background(), proxied, nil); err == nil || !strings.Contains(err.Error(), "proxy") {
		t.Errorf("proxy: err %v", err)
	}
}

// The command runs through the server's shell with stdin piped; stdout and stderr are
// captured apart; a non-zero exit fails with the status, the command and the output.
func TestRunRemote(t *testing.T) {
	s := startTestServer(t)
	in := CommandInputs{Connection: s.connectionTo(t), Stdin: sp("from stdin\n")}
	out, err := runRemote(context.Background(), in, sp("cat; echo to-err >&2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Stdout != "from stdin" || out.Stderr != "to-err" {
		t.Errorf("out = %+v", out)
	}

	_, err = runRemote(context.Background(), in, sp("echo partial; echo bad >&2; exit 3"), nil)
	if err == nil {
		t.Fatal("a failing command succeeded")
	}
	for _, want := range []string{"status 3", `running "echo partial; echo bad >&2; exit 3"`, "partial", "bad"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if out, err := runRemote(context.Background(), in, nil, nil); err != nil || out != (run.Output{}) {
		t.Errorf("no command: %+v, %v", out, err)
	}
}

// environment goes through SSH setenv: accepted variables arrive, a refused one fails the
// command (upstream), while refused previous-output variables only warn.
func TestRunRemoteEnvironment(t *testing.T) {
	s := startTestServer(t)
	in := CommandInputs{Connection: s.connectionTo(t), Environment: map[string]string{"LC_ODOO": "yes"}}
	out, err := runRemote(context.Background(), in, sp(`echo "$LC_ODOO"`), &run.Output{Stdout: "old"})
	if err != nil || out.Stdout != "yes" {
		t.Errorf("accepted variable: %+v, %v", out, err)
	}
	if env := s.lastEnv(); len(env) != 1 || env[0] != "LC_ODOO=yes" {
		t.Errorf("server saw %q", env)
	}

	in.Environment = map[string]string{"CUSTOM": "x"}
	_, err = runRemote(context.Background(), in, sp("true"), nil)
	if err == nil || err.Error() != `could not set environment variable "CUSTOM": ssh: setenv failed` {
		t.Errorf("refused variable: err %v", err)
	}
}

// CopyToRemote writes a FileAsset, a StringAsset and a directory (FileArchive), creating
// parents, and copies into an existing directory under the source's name.
func TestCopyToRemote(t *testing.T) {
	s := startTestServer(t)
	conn := s.connectionTo(t)
	local := t.TempDir()
	remoteDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "a.txt"), []byte("file asset"), 0o640); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(local, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "b.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fileAsset, _ := resource.NewPathAsset(filepath.Join(local, "a.txt"))
	textAsset, _ := resource.NewTextAsset("text asset")
	dirArchive, _ := resource.NewPathArchive(tree)

	copyTo := func(src types.AssetOrArchive, dest string) error {
		return copyToRemote(context.Background(), CopyToRemoteInputs{Connection: conn, Source: src, RemotePath: dest})
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
		}
		return string(b)
	}
	if err := copyTo(types.AssetOrArchive{Asset: fileAsset}, filepath.Join(remoteDir, "new/dir/a.copy")); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(remoteDir, "new/dir/a.copy")); got != "file asset" {
		t.Errorf("file asset copied as %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(remoteDir, "new/dir/a.copy")); fi == nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode not kept: %v", fi)
	}
	if err := copyTo(types.AssetOrArchive{Asset: textAsset}, filepath.Join(remoteDir, "new/dir/a.copy")); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(remoteDir, "new/dir/a.copy")); got != "text asset" {
		t.Errorf("text asset did not overwrite: %q", got)
	}
	if err := copyTo(types.AssetOrArchive{Asset: fileAsset}, remoteDir); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(remoteDir, "a.txt")); got != "file asset" {
		t.Errorf("into a directory: %q", got)
	}
	if err := copyTo(types.AssetOrArchive{Archive: dirArchive}, filepath.Join(remoteDir, "t")); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(remoteDir, "t/sub/b.sh")); got != "#!/bin/sh\n" {
		t.Errorf("directory copy: %q", got)
	}
	if err := copyTo(types.AssetOrArchive{Asset: textAsset}, remoteDir); err == nil {
		t.Error("a StringAsset into a directory succeeded without a file name")
	}
}

// The IDs a real create returns have upstream's shape: a Command's name and 8 hex digits
// (no separator), a CopyToRemote's 8 hex digits.
func TestCreateIDs(t *testing.T) {
	s := startTestServer(t)
	conn := s.connectionTo(t)
	cmd, err := Command{}.Create(context.Background(), infer.CreateRequest[CommandInputs]{
		Name: "odoo-wait", Inputs: CommandInputs{Connection: conn, Create: sp("true")},
	})
	if err != nil || !regexp.MustCompile(`^odoo-wait[0-9a-f]{8}$`).MatchString(cmd.ID) {
		t.Errorf("Command ID %q, err %v", cmd.ID, err)
	}
	text, _ := resource.NewTextAsset("x")
	cp, err := CopyToRemote{}.Create(context.Background(), infer.CreateRequest[CopyToRemoteInputs]{
		Name: "odoo-upload", Inputs: CopyToRemoteInputs{Connection: conn, Source: types.AssetOrArchive{Asset: text},
			RemotePath: filepath.Join(t.TempDir(), "x.txt")},
	})
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(cp.ID) {
		t.Errorf("CopyToRemote ID %q, err %v", cp.ID, err)
	}
}

// As upstream, an update copies again only when the source's content or remotePath changed: a
// new connection alone copies nothing.
func TestCopyUpdateCopiesOnlyOnNewContentOrPath(t *testing.T) {
	s := startTestServer(t)
	conn := s.connectionTo(t)
	dest := filepath.Join(t.TempDir(), "f.txt")
	v1, _ := resource.NewTextAsset("v1")
	in := CopyToRemoteInputs{Connection: conn, Source: types.AssetOrArchive{Asset: v1}, RemotePath: dest}
	if _, err := (CopyToRemote{}).Create(context.Background(), infer.CreateRequest[CopyToRemoteInputs]{Name: "cp", Inputs: in}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dest); err != nil {
		t.Fatal(err)
	}
	update := func(news CopyToRemoteInputs) {
		t.Helper()
		_, err := (CopyToRemote{}).Update(context.Background(), infer.UpdateRequest[CopyToRemoteInputs, CopyToRemoteOutputs]{
			ID: "id", Inputs: news, State: CopyToRemoteOutputs{in},
		})
		if err != nil {
			t.Fatal(err)
		}
		in = news
	}
	newConn := conn
	newConn.DialErrorLimit = ip(3)
	update(CopyToRemoteInputs{Connection: newConn, Source: in.Source, RemotePath: dest})
	if _, err := os.Stat(dest); err == nil {
		t.Error("a connection change copied again")
	}
	v2, _ := resource.NewTextAsset("v2")
	update(CopyToRemoteInputs{Connection: newConn, Source: types.AssetOrArchive{Asset: v2}, RemotePath: dest})
	if b, err := os.ReadFile(dest); err != nil || string(b) != "v2" {
		t.Errorf("new content not copied: %q %v", b, err)
	}
}
