package run

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func ptr(s string) *string { return &s }

// The logging input decides which streams reach the engine's log; a typo must not silently
// mean "log everything" (a quiet step may print secrets).
func TestSelect(t *testing.T) {
	cases := []struct {
		in   *string
		want Selection
	}{
		{nil, Selection{true, true}},
		{ptr("stdoutAndStderr"), Selection{true, true}},
		{ptr("stdout"), Selection{Stdout: true}},
		{ptr("stderr"), Selection{Stderr: true}},
		{ptr("none"), Selection{}},
	}
	for _, c := range cases {
		got, err := Select(c.in)
		if err != nil || got != c.want {
			t.Errorf("Select(%v) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	if _, err := Select(ptr("None")); err == nil {
		t.Error("Select(\"None\") accepted an unknown value")
	}
}

// Each selection logs exactly the lines of its streams, line by line as they arrive, and
// always captures both streams for the outputs.
func TestCaptureLogsSelectedStreams(t *testing.T) {
	for _, tc := range []struct {
		sel  Selection
		want []string
	}{
		{Selection{true, true}, []string{"out1", "err1", "out2", "out-tail", "err-tail"}},
		{Selection{Stdout: true}, []string{"out1", "out2", "out-tail"}},
		{Selection{Stderr: true}, []string{"err1", "err-tail"}},
		{Selection{}, nil},
	} {
		var logged []string
		c := NewCapture(tc.sel, func(s string) { logged = append(logged, s) })
		fmt.Fprint(c.Stdout(), "out1\nou")
		fmt.Fprint(c.Stderr(), "err1\r\n")
		fmt.Fprint(c.Stdout(), "t2\nout-tail")
		fmt.Fprint(c.Stderr(), "err-tail")
		c.Flush()
		if !reflect.DeepEqual(logged, tc.want) {
			t.Errorf("selection %+v logged %q, want %q", tc.sel, logged, tc.want)
		}
		if got := c.StdoutString(); got != "out1\nout2\nout-tail" {
			t.Errorf("stdout = %q", got)
		}
		if got := c.StderrString(); got != "err1\r\nerr-tail" {
			t.Errorf("stderr = %q", got)
		}
	}
}

// Outputs drop exactly one final newline, as upstream's stdout/stderr outputs do.
func TestCaptureTrimsOneNewline(t *testing.T) {
	c := NewCapture(Selection{}, nil)
	fmt.Fprint(c.Stdout(), "a\n\n")
	if got := c.StdoutString(); got != "a\n" {
		t.Errorf("stdout = %q, want %q", got, "a\n")
	}
}

// A failed command's error names the cause (exit status), the command and its output in
// the order it was printed: that is all an operator sees of a failed step.
func TestCommandError(t *testing.T) {
	c := NewCapture(Selection{}, nil)
	fmt.Fprint(c.Stdout(), "first\n")
	fmt.Fprint(c.Stderr(), "second\n")
	cause := errors.New("Process exited with status 3")
	err := CommandError(cause, "do-it", c)
	if !errors.Is(err, cause) {
		t.Error("CommandError does not wrap its cause")
	}
	want := "Process exited with status 3: running \"do-it\":\nfirst\nsecond"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err.Error(), want)
	}
}

// update falls back to create; the previous output is passed unless switched off.
func TestPickAndPreviousEnv(t *testing.T) {
	if got := *Pick(nil, ptr("c")); got != "c" {
		t.Errorf("Pick(nil, c) = %q", got)
	}
	if got := *Pick(ptr("u"), ptr("c")); got != "u" {
		t.Errorf("Pick(u, c) = %q", got)
	}
	prev := &Output{Stdout: "o", Stderr: "e"}
	if env := PreviousEnv(nil, prev); env[EnvStdout] != "o" || env[EnvStderr] != "e" {
		t.Errorf("PreviousEnv(nil) = %v", env)
	}
	off := false
	if env := PreviousEnv(&off, prev); env != nil {
		t.Errorf("PreviousEnv(false) = %v, want nil", env)
	}
	if env := PreviousEnv(nil, nil); env != nil {
		t.Errorf("PreviousEnv without a previous run = %v", env)
	}
}
