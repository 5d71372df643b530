// Package run holds what the local and the remote Command share: which output streams go
// to the engine's log, capturing a command's output, the error of a failed command and the
// previous-output environment.
package run

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Logging values as the SDKs send them (the `Logging` enum of both modules).
const (
	LogStdout          = "stdout"
	LogStderr          = "stderr"
	LogStdoutAndStderr = "stdoutAndStderr"
	LogNone            = "none"
)

// Selection says which of a command's streams are sent to the engine's log while it runs.
type Selection struct{ Stdout, Stderr bool }

// Select maps a `logging` input to a Selection; unset means both streams, as upstream.
func Select(logging *string) (Selection, error) {
	if logging == nil {
		return Selection{Stdout: true, Stderr: true}, nil
	}
	switch *logging {
	case LogStdoutAndStderr, "":
		return Selection{Stdout: true, Stderr: true}, nil
	case LogStdout:
		return Selection{Stdout: true}, nil
	case LogStderr:
		return Selection{Stderr: true}, nil
	case LogNone:
		return Selection{}, nil
	}
	return Selection{}, fmt.Errorf("logging: %q is not one of %s, %s, %s, %s",
		*logging, LogStdout, LogStderr, LogStdoutAndStderr, LogNone)
}

// Capture collects a running command's stdout and stderr, both apart and interleaved in
// arrival order (for the error of a failed command), and sends each complete line of the
// selected streams to log as soon as it arrives.
type Capture struct {
	mu       sync.Mutex
	out, err bytes.Buffer
	combined bytes.Buffer
	log      func(string)
	sel      Selection
	stdout   *stream
	stderr   *stream
}

// NewCapture returns a Capture that logs the streams chosen by sel through log (may be nil).
func NewCapture(sel Selection, log func(string)) *Capture {
	c := &Capture{sel: sel, log: log}
	c.stdout = &stream{c: c, buf: &c.out, logged: sel.Stdout}
	c.stderr = &stream{c: c, buf: &c.err, logged: sel.Stderr}
	return c
}

// Stdout is the writer to connect to the command's standard output.
func (c *Capture) Stdout() io.Writer { return c.stdout }

// Stderr is the writer to connect to the command's standard error.
func (c *Capture) Stderr() io.Writer { return c.stderr }

// Flush logs the last line of each stream when it did not end with a newline.
func (c *Capture) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stdout.flushLocked()
	c.stderr.flushLocked()
}

// StdoutString is the command's stdout without its final newline (as upstream's output).
func (c *Capture) StdoutString() string { return c.trimmed(&c.out) }

// StderrString is the command's stderr without its final newline.
func (c *Capture) StderrString() string { return c.trimmed(&c.err) }

// Combined is stdout and stderr interleaved as they arrived.
func (c *Capture) Combined() string { return c.trimmed(&c.combined) }

func (c *Capture) trimmed(b *bytes.Buffer) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSuffix(b.String(), "\n")
}

type stream struct {
	c       *Capture
	buf     *bytes.Buffer
	logged  bool
	partial []byte
}

func (s *stream) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.buf.Write(p)
	s.c.combined.Write(p)
	if !s.logged || s.c.log == nil {
		return len(p), nil
	}
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.c.log(strings.TrimSuffix(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

func (s *stream) flushLocked() {
	if s.logged && s.c.log != nil && len(s.partial) > 0 {
		s.c.log(string(s.partial))
	}
	s.partial = nil
}

// CommandError is the error of a command that failed: the cause (for example
// "Process exited with status 1"), the command as given and everything it printed, like
// upstream's `<cause>: running "<command>":\n<output>`.
func CommandError(cause error, command string, c *Capture) error {
	return fmt.Errorf("%w: running %q:\n%s", cause, command, c.Combined())
}

// Pick chooses the command an operation runs: update falls back to create, as upstream.
func Pick(update, create *string) *string {
	if update != nil && *update != "" {
		return update
	}
	return create
}

// Previous-output variables, set when addPreviousOutputInEnv is unset or true.
const (
	EnvStdout = "PULUMI_COMMAND_STDOUT"
	EnvStderr = "PULUMI_COMMAND_STDERR"
)

// PreviousEnv is the previous stdout/stderr as environment variables, or nil when
// addPreviousOutputInEnv is false or there was no previous run.
func PreviousEnv(add *bool, prev *Output) map[string]string {
	if prev == nil || (add != nil && !*add) {
		return nil
	}
	return map[string]string{EnvStdout: prev.Stdout, EnvStderr: prev.Stderr}
}

// Output is what a run of a command produced.
type Output struct{ Stdout, Stderr string }
