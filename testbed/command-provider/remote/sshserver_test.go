package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is a small SSH server on loopback for the unit tests: password "pw" for any
// user, `exec` runs the command with /bin/sh -c on this machine, `env` accepts only LANG
// and LC_* (Debian's AcceptEnv), and the sftp subsystem serves this machine's files.
type testServer struct {
	addr    string
	hostKey ssh.PublicKey
	mu      sync.Mutex
	env     []string // last session's accepted variables
}

func (s *testServer) lastEnv() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.env...)
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	s, err := startTestServerAt(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startTestServerAt listens on addr (a fixed port lets a test start it late); safe to call
// from another goroutine.
func startTestServerAt(t *testing.T, addr string) (*testServer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == "pw" {
				return nil, nil
			}
			return nil, io.EOF
		},
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ln.Close() })
	s := &testServer{addr: ln.Addr().String(), hostKey: signer.PublicKey()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serveConn(c, cfg)
		}
	}()
	return s, nil
}

func (s *testServer) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.serveSession(ch, creqs)
	}
}

func sshString(b []byte) (string, []byte) {
	if len(b) < 4 {
		return "", nil
	}
	n := binary.BigEndian.Uint32(b)
	if uint32(len(b)-4) < n {
		return "", nil
	}
	return string(b[4 : 4+n]), b[4+n:]
}

func (s *testServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			name, rest := sshString(req.Payload)
			value, _ := sshString(rest)
			ok := name == "LANG" || strings.HasPrefix(name, "LC_")
			if ok {
				env = append(env, name+"="+value)
			}
			_ = req.Reply(ok, nil)
		case "exec":
			cmdline, _ := sshString(req.Payload)
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.env = env
			s.mu.Unlock()
			cmd := exec.Command("/bin/sh", "-c", cmdline)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			status := uint32(0)
			if err := cmd.Run(); err != nil {
				status = 255
				if ee, ok := err.(*exec.ExitError); ok {
					if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
						status = uint32(ws.ExitStatus())
					}
				}
			}
			_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
			return
		case "subsystem":
			name, _ := sshString(req.Payload)
			if name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			srv, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			_ = srv.Serve()
			return
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// connectionTo is a Connection to the test server.
func (s *testServer) connectionTo(t *testing.T) Connection {
	t.Helper()
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	var p float64
	for _, c := range port {
		p = p*10 + float64(c-'0')
	}
	pw := "pw"
	return Connection{Host: host, Port: &p, Password: &pw}
}
