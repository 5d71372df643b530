package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	rpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

// rpcServer drives the provider through its gRPC server, as the engine does (go-provider's
// own integration test server does not build against sdk v3.260.0). It is configured like
// the engine configures it: old inputs are sent.
type rpcServer struct {
	t *testing.T
	s rpc.ResourceProviderServer
}

func server(t *testing.T) *rpcServer {
	t.Helper()
	prov, err := newProvider()
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.RawServer(name, version, prov)(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Configure(context.Background(), &rpc.ConfigureRequest{
		SendsOldInputs: true, SendsOldInputsToDelete: true, AcceptSecrets: true,
	}); err != nil {
		t.Fatal(err)
	}
	return &rpcServer{t, s}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true, KeepOutputValues: true}

func (r *rpcServer) toRPC(m property.Map) *structpb.Struct {
	s, err := plugin.MarshalProperties(resource.ToResourcePropertyMap(m), marshalOpts)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rpcServer) fromRPC(s *structpb.Struct) property.Map {
	m, err := plugin.UnmarshalProperties(s, marshalOpts)
	if err != nil {
		r.t.Fatal(err)
	}
	return resource.FromResourcePropertyMap(m)
}

func (r *rpcServer) GetSchema(p.GetSchemaRequest) (p.GetSchemaResponse, error) {
	resp, err := r.s.GetSchema(context.Background(), &rpc.GetSchemaRequest{})
	if err != nil {
		return p.GetSchemaResponse{}, err
	}
	return p.GetSchemaResponse{Schema: resp.Schema}, nil
}

func (r *rpcServer) Check(req p.CheckRequest) (p.CheckResponse, error) {
	resp, err := r.s.Check(context.Background(), &rpc.CheckRequest{
		Urn: string(req.Urn), News: r.toRPC(req.Inputs), Olds: r.toRPC(req.State),
	})
	if err != nil {
		return p.CheckResponse{}, err
	}
	var failures []p.CheckFailure
	for _, f := range resp.Failures {
		failures = append(failures, p.CheckFailure{Property: f.Property, Reason: f.Reason})
	}
	return p.CheckResponse{Inputs: r.fromRPC(resp.Inputs), Failures: failures}, nil
}

var diffKinds = map[rpc.PropertyDiff_Kind]p.DiffKind{
	rpc.PropertyDiff_ADD: p.Add, rpc.PropertyDiff_ADD_REPLACE: p.AddReplace,
	rpc.PropertyDiff_DELETE: p.Delete, rpc.PropertyDiff_DELETE_REPLACE: p.DeleteReplace,
	rpc.PropertyDiff_UPDATE: p.Update, rpc.PropertyDiff_UPDATE_REPLACE: p.UpdateReplace,
}

func (r *rpcServer) Diff(req p.DiffRequest) (p.DiffResponse, error) {
	resp, err := r.s.Diff(context.Background(), &rpc.DiffRequest{
		Id: req.ID, Urn: string(req.Urn), Olds: r.toRPC(req.State), News: r.toRPC(req.Inputs),
		OldInputs: r.toRPC(req.OldInputs),
	})
	if err != nil {
		return p.DiffResponse{}, err
	}
	out := p.DiffResponse{HasChanges: resp.Changes == rpc.DiffResponse_DIFF_SOME, DetailedDiff: map[string]p.PropertyDiff{}}
	for k, d := range resp.DetailedDiff {
		out.DetailedDiff[k] = p.PropertyDiff{Kind: diffKinds[d.Kind], InputDiff: d.InputDiff}
	}
	return out, nil
}

func (r *rpcServer) Create(req p.CreateRequest) (p.CreateResponse, error) {
	resp, err := r.s.Create(context.Background(), &rpc.CreateRequest{
		Urn: string(req.Urn), Properties: r.toRPC(req.Properties), Preview: req.DryRun,
	})
	if err != nil {
		return p.CreateResponse{}, err
	}
	return p.CreateResponse{ID: resp.Id, Properties: r.fromRPC(resp.Properties)}, nil
}

func (r *rpcServer) Update(req p.UpdateRequest) (p.UpdateResponse, error) {
	resp, err := r.s.Update(context.Background(), &rpc.UpdateRequest{
		Id: req.ID, Urn: string(req.Urn), Olds: r.toRPC(req.State), News: r.toRPC(req.Inputs),
		OldInputs: r.toRPC(req.OldInputs), Preview: req.DryRun,
	})
	if err != nil {
		return p.UpdateResponse{}, err
	}
	return p.UpdateResponse{Properties: r.fromRPC(resp.Properties)}, nil
}

func (r *rpcServer) Delete(req p.DeleteRequest) error {
	_, err := r.s.Delete(context.Background(), &rpc.DeleteRequest{
		Id: req.ID, Urn: string(req.Urn), Properties: r.toRPC(req.Properties),
	})
	return err
}

func urn(typ, n string) resource.URN {
	return resource.NewURN("test", "proj", "", tokens.Type("command:"+typ), n)
}

func mustMap(t *testing.T, m map[string]any) property.Map {
	t.Helper()
	return resource.FromResourcePropertyMap(resource.NewPropertyMapFromMap(m))
}

// The engine finds resources by token and the Python SDK sends camelCase names: the schema
// must carry upstream's tokens, names, defaults and the replace-on-change of triggers.
func TestSchema(t *testing.T) {
	resp, err := server(t).GetSchema(p.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Name      string
		Version   string
		Resources map[string]struct {
			InputProperties map[string]struct {
				ReplaceOnChanges bool
				Secret           bool
			}
			Properties map[string]any
		}
		Types map[string]struct {
			Properties map[string]struct{ Default any }
			Enum       []struct{ Value string }
		}
	}
	if err := json.Unmarshal([]byte(resp.Schema), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "command" {
		t.Errorf("schema name %q", spec.Name)
	}
	for tok, props := range map[string][]string{
		"command:remote:Command": {"connection", "create", "update", "delete", "stdin", "environment",
			"triggers", "logging", "addPreviousOutputInEnv"},
		"command:remote:CopyToRemote": {"connection", "source", "remotePath", "triggers"},
		"command:local:Command": {"create", "update", "delete", "stdin", "environment", "triggers", "dir",
			"interpreter", "logging", "addPreviousOutputInEnv"},
	} {
		r, ok := spec.Resources[tok]
		if !ok {
			t.Errorf("no resource %s", tok)
			continue
		}
		for _, prop := range props {
			if _, ok := r.InputProperties[prop]; !ok {
				t.Errorf("%s has no input %s", tok, prop)
			}
		}
		if !r.InputProperties["triggers"].ReplaceOnChanges {
			t.Errorf("%s: triggers is not replaceOnChanges", tok)
		}
		if strings.HasSuffix(tok, "Command") {
			for _, out := range []string{"stdout", "stderr"} {
				if _, ok := r.Properties[out]; !ok {
					t.Errorf("%s has no output %s", tok, out)
				}
			}
		}
	}
	conn := spec.Types["command:remote:Connection"].Properties
	for prop, want := range map[string]any{"port": 22.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0} {
		if conn[prop].Default != want {
			t.Errorf("connection.%s default %v, want %v", prop, conn[prop].Default, want)
		}
	}
	var values []string
	for _, e := range spec.Types["command:remote:Logging"].Enum {
		values = append(values, e.Value)
	}
	if strings.Join(values, ",") != "stdout,stderr,stdoutAndStderr,none" {
		t.Errorf("remote Logging enum %v", values)
	}
}

// Check fills the connection defaults, so the stored inputs say what was used.
func TestCheckAppliesConnectionDefaults(t *testing.T) {
	resp, err := server(t).Check(p.CheckRequest{
		Urn:    urn("remote:Command", "c"),
		Inputs: mustMap(t, map[string]any{"connection": map[string]any{"host": "10.0.0.5"}, "create": "true"}),
	})
	if err != nil || len(resp.Failures) > 0 {
		t.Fatalf("check: %v %v", err, resp.Failures)
	}
	conn := resp.Inputs.Get("connection").AsMap()
	for k, want := range map[string]any{"port": 22.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0} {
		v := conn.Get(k)
		var got any
		switch {
		case v.IsNumber():
			got = v.AsNumber()
		case v.IsString():
			got = v.AsString()
		}
		if got != want {
			t.Errorf("connection.%s = %v, want %v", k, got, want)
		}
	}
}

func remoteInputs() map[string]any {
	return map[string]any{
		"connection": map[string]any{"host": "10.0.0.5", "port": 22.0, "user": "root",
			"dialErrorLimit": 10.0, "perDialTimeout": 15.0, "privateKey": "KEY"},
		"create":   "setup",
		"delete":   "teardown",
		"stdin":    "script",
		"triggers": []any{"i-1"},
	}
}

// A change of any input but triggers is an update of exactly that input; a triggers
// change (even alongside others) is a replacement; no change is no change.
func TestDiff(t *testing.T) {
	s := server(t)
	old := remoteInputs()
	state := mustMap(t, old).Set("stdout", property.New("out")).Set("stderr", property.New(""))
	cases := []struct {
		name    string
		change  func(m map[string]any)
		want    map[string]p.DiffKind
		changes bool
	}{
		{"nothing", func(map[string]any) {}, map[string]p.DiffKind{}, false},
		{"create", func(m map[string]any) { m["create"] = "setup v2" }, map[string]p.DiffKind{"create": p.Update}, true},
		{"delete", func(m map[string]any) { m["delete"] = "teardown v2" }, map[string]p.DiffKind{"delete": p.Update}, true},
		{"stdin", func(m map[string]any) { m["stdin"] = "script v2" }, map[string]p.DiffKind{"stdin": p.Update}, true},
		{"update added", func(m map[string]any) { m["update"] = "refresh" }, map[string]p.DiffKind{"update": p.Add}, true},
		{"host", func(m map[string]any) {
			m["connection"].(map[string]any)["host"] = "10.0.0.6"
		}, map[string]p.DiffKind{"connection.host": p.Update}, true},
		{"trigger", func(m map[string]any) { m["triggers"] = []any{"i-2"} },
			map[string]p.DiffKind{"triggers[0]": p.UpdateReplace}, true},
		{"trigger added", func(m map[string]any) { m["triggers"] = []any{"i-1", "x"} },
			map[string]p.DiffKind{"triggers[1]": p.AddReplace}, true},
		{"triggers removed", func(m map[string]any) { delete(m, "triggers") },
			map[string]p.DiffKind{"triggers": p.DeleteReplace}, true},
		{"trigger and create", func(m map[string]any) { m["triggers"] = []any{"i-2"}; m["create"] = "x" },
			map[string]p.DiffKind{"triggers[0]": p.UpdateReplace, "create": p.Update}, true},
	}
	for _, tc := range cases {
		news := remoteInputs()
		news["connection"] = map[string]any{}
		for k, v := range remoteInputs()["connection"].(map[string]any) {
			news["connection"].(map[string]any)[k] = v
		}
		tc.change(news)
		resp, err := s.Diff(p.DiffRequest{
			Urn: urn("remote:Command", "c"), ID: "c-1", State: state,
			OldInputs: mustMap(t, old), Inputs: mustMap(t, news),
		})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := map[string]p.DiffKind{}
		for k, d := range resp.DetailedDiff {
			got[k] = d.Kind
		}
		if resp.HasChanges != tc.changes || len(got) != len(tc.want) {
			t.Errorf("%s: changes %v, diff %v; want %v, %v", tc.name, resp.HasChanges, got, tc.changes, tc.want)
			continue
		}
		for k, want := range tc.want {
			if got[k] != want {
				t.Errorf("%s: %s is %q, want %q", tc.name, k, got[k], want)
			}
		}
	}
}

// An unknown input at preview (a server's address not yet known) is a change, not "same".
func TestDiffUnknownInputIsAChange(t *testing.T) {
	old := remoteInputs()
	news := mustMap(t, remoteInputs()).Set("create", property.New(property.Computed))
	resp, err := server(t).Diff(p.DiffRequest{
		Urn: urn("remote:Command", "c"), ID: "c-1", State: mustMap(t, old),
		OldInputs: mustMap(t, old), Inputs: news,
	})
	if err != nil || !resp.HasChanges || resp.DetailedDiff["create"].Kind != p.Update {
		t.Errorf("unknown create: %+v %v", resp, err)
	}
}

// logCapture records what the provider logs (the integration server logs through slog).
// Status (ephemeral) lines come with the attribute kind=status (go-provider's slog sink).
type logCapture struct {
	mu       sync.Mutex
	lines    []string
	statuses []string
	status   bool // set on the handler WithAttrs returns for kind=status
	parent   *logCapture
}

func (l *logCapture) root() *logCapture {
	if l.parent != nil {
		return l.parent
	}
	return l
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.lines = append(root.lines, r.Message)
	if l.status {
		root.statuses = append(root.statuses, r.Message)
	}
	return nil
}
func (l *logCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	status := l.status
	for _, a := range attrs {
		status = status || (a.Key == "kind" && a.Value.String() == "status")
	}
	return &logCapture{status: status, parent: l.root()}
}
func (l *logCapture) WithGroup(string) slog.Handler { return l }
func (l *logCapture) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
func (l *logCapture) allStatus() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.statuses, "\n")
}

func captureLogs(t *testing.T) *logCapture {
	l := &logCapture{}
	prev := slog.Default()
	slog.SetDefault(slog.New(l))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return l
}

// The local Command's life: nothing runs on preview; create runs with stdin; a changed
// input re-runs create (no update set) with the previous output in the environment; update
// runs when set; delete runs delete; a failure reports status, command and output.
func TestLocalCommandLifecycle(t *testing.T) {
	s := server(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	u := urn("local:Command", "l")
	inputs := mustMap(t, map[string]any{
		"create": "cat >> ran; echo created-$(wc -l < ran)",
		"delete": "echo deleted > gone",
		"dir":    dir,
	})
	inputs = inputs.Set("stdin", property.New("line\n").WithSecret(true))

	prev, err := s.Create(p.CreateRequest{Urn: u, Properties: inputs, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("preview ran the command")
	}
	if !prev.Properties.Get("stdout").IsComputed() {
		t.Errorf("preview stdout is %v, want unknown", prev.Properties.Get("stdout"))
	}

	created, err := s.Create(p.CreateRequest{Urn: u, Properties: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^l[0-9a-f]{8}$`).MatchString(created.ID) {
		t.Errorf("ID %q, want upstream's shape: the name and 8 hex digits", created.ID)
	}
	if got := created.Properties.Get("stdout"); got.AsString() != "created-1" || got.Secret() {
		t.Errorf("stdout %v (secret %v)", got, got.Secret())
	}
	if !created.Properties.Get("stdin").Secret() {
		t.Error("a secret stdin came back as a plain output")
	}

	changed := inputs.Set("create", property.New(`cat >> ran; echo "again after $PULUMI_COMMAND_STDOUT"`))
	updated, err := s.Update(p.UpdateRequest{Urn: u, ID: created.ID, State: created.Properties, Inputs: changed})
	if err != nil {
		t.Fatal(err)
	}
	if got := updated.Properties.Get("stdout").AsString(); got != "again after created-1" {
		t.Errorf("update re-ran create as %q", got)
	}
	withUpdate := changed.Set("update", property.New("echo update-ran"))
	updated2, err := s.Update(p.UpdateRequest{Urn: u, ID: created.ID, State: updated.Properties, Inputs: withUpdate})
	if err != nil || updated2.Properties.Get("stdout").AsString() != "update-ran" {
		t.Errorf("update command: %v %v", updated2.Properties.Get("stdout"), err)
	}
	if err := s.Delete(p.DeleteRequest{Urn: u, ID: created.ID, Properties: updated2.Properties}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gone")); string(b) != "deleted\n" {
		t.Errorf("delete did not run: %q", b)
	}

	_, err = s.Create(p.CreateRequest{Urn: u, Properties: mustMap(t, map[string]any{
		"create": "echo out-text; echo err-text >&2; exit 7"})})
	if err == nil {
		t.Fatal("a failing create succeeded")
	}
	for _, want := range []string{"exit status 7", "running \"echo out-text", "out-text", "err-text"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// logging decides what reaches the engine's log; the outputs are captured either way.
func TestLocalCommandLogging(t *testing.T) {
	s := server(t)
	for logging, want := range map[string][]string{
		"":                {"OUT-LINE", "ERR-LINE"},
		"stdoutAndStderr": {"OUT-LINE", "ERR-LINE"},
		"stdout":          {"OUT-LINE"},
		"stderr":          {"ERR-LINE"},
		"none":            {},
	} {
		logs := captureLogs(t)
		in := map[string]any{"create": "echo OUT-LINE; echo ERR-LINE >&2"}
		if logging != "" {
			in["logging"] = logging
		}
		resp, err := s.Create(p.CreateRequest{Urn: urn("local:Command", "l"), Properties: mustMap(t, in)})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Properties.Get("stdout").AsString() != "OUT-LINE" || resp.Properties.Get("stderr").AsString() != "ERR-LINE" {
			t.Errorf("logging %q: outputs not captured", logging)
		}
		got := logs.all()
		for _, line := range []string{"OUT-LINE", "ERR-LINE"} {
			wanted := false
			for _, w := range want {
				wanted = wanted || w == line
			}
			if strings.Contains(got, line) != wanted {
				t.Errorf("logging %q: %s logged=%v, want %v (log: %q)", logging, line, !wanted, wanted, got)
			}
			// As upstream: output lines are ephemeral status lines, so `pulumi up` does not
			// repeat them in a Diagnostics block at the end.
			if strings.Contains(logs.allStatus(), line) != wanted {
				t.Errorf("logging %q: %s is not an ephemeral status line (status log: %q)", logging, line, logs.allStatus())
			}
		}
	}
}

// At preview a server's address is often unknown (a new Elastic IP): Check and a preview
// Create must accept an unknown host or a wholly unknown connection, run nothing, and leave
// stdout unknown.
func TestPreviewWithUnknownConnection(t *testing.T) {
	s := server(t)
	u := urn("remote:Command", "c")
	partly := mustMap(t, map[string]any{"create": "touch /nonexistent/never", "connection": map[string]any{"user": "root"}})
	partly = partly.Set("connection", property.New(partly.Get("connection").AsMap().Set("host", property.New(property.Computed))))
	wholly := mustMap(t, map[string]any{"create": "touch /nonexistent/never"}).Set("connection", property.New(property.Computed))
	for name, in := range map[string]property.Map{"unknown host": partly, "unknown connection": wholly} {
		checked, err := s.Check(p.CheckRequest{Urn: u, Inputs: in})
		if err != nil || len(checked.Failures) > 0 {
			t.Errorf("%s: check: %v %v", name, err, checked.Failures)
			continue
		}
		resp, err := s.Create(p.CreateRequest{Urn: u, Properties: checked.Inputs, DryRun: true})
		if err != nil {
			t.Errorf("%s: preview create: %v", name, err)
			continue
		}
		if !resp.Properties.Get("stdout").IsComputed() {
			t.Errorf("%s: stdout %v, want unknown", name, resp.Properties.Get("stdout"))
		}
	}
}

// A CopyToRemote's preview copies nothing and answers with no ID, as upstream; its ID comes
// with the real copy (tested with an SSH server in remote/).
func TestCopyPreviewHasNoID(t *testing.T) {
	s := server(t)
	u := urn("remote:CopyToRemote", "cp")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.txt")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	asset, err := resource.NewPathAsset(src)
	if err != nil {
		t.Fatal(err)
	}
	in := resource.FromResourcePropertyMap(resource.PropertyMap{
		"connection": resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("192.0.2.1")}),
		"source":     resource.NewAssetProperty(asset),
		"remotePath": resource.NewStringProperty(filepath.Join(dir, "dst.txt")),
	})
	checked, err := s.Check(p.CheckRequest{Urn: u, Inputs: in})
	if err != nil || len(checked.Failures) > 0 {
		t.Fatalf("check: %v %v", err, checked.Failures)
	}
	resp, err := s.Create(p.CreateRequest{Urn: u, Properties: checked.Inputs, DryRun: true})
	if err != nil || resp.ID != "" {
		t.Errorf("preview: ID %q, err %v; want no ID", resp.ID, err)
	}
}

// A preview of an update runs nothing and shows stdout as unknown (it will change).
func TestPreviewUpdateRunsNothing(t *testing.T) {
	s := server(t)
	dir := t.TempDir()
	u := urn("local:Command", "l")
	in := mustMap(t, map[string]any{"create": "echo run >> log; echo v1", "dir": dir})
	created, err := s.Create(p.CreateRequest{Urn: u, Properties: in})
	if err != nil {
		t.Fatal(err)
	}
	changed := in.Set("create", property.New("echo run >> log; echo v2"))
	resp, err := s.Update(p.UpdateRequest{Urn: u, ID: created.ID, State: created.Properties, OldInputs: in,
		Inputs: changed, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "log")); string(b) != "run\n" {
		t.Errorf("preview update ran the command: log %q", b)
	}
	if !resp.Properties.Get("stdout").IsComputed() {
		t.Errorf("preview update stdout %v, want unknown", resp.Properties.Get("stdout"))
	}
}
