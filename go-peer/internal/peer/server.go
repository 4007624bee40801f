package peer

import (
	"errors"
	"log"
	"net"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

// Server accepts TCP connections and runs an independent smux server
// session on each.
type Server struct {
	ln  net.Listener
	cfg *smux.Config
	log *log.Logger

	mu       sync.Mutex
	closed   bool
	sessions map[*smux.Session]struct{}
}

// Listen binds addr (port 0: any free port). An IPv4 literal host binds
// IPv4 only, so 0.0.0.0 is reported as such rather than as Go's dual-stack
// [::].
func Listen(addr string, cfg *smux.Config, logger *log.Logger) (*Server, error) {
	ln, err := net.Listen(listenNetwork(addr), addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, cfg: cfg, log: logger, sessions: map[*smux.Session]struct{}{}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve() error {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Printf("accept: %v (retrying)", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		go s.serveConn(conn)
	}
}

func (s *Server) serveConn(conn net.Conn) {
	remote := conn.RemoteAddr()
	sess, err := smux.Server(conn, s.cfg)
	if err != nil { // cannot happen: cfg passed VerifyConfig
		s.log.Printf("%v: smux.Server: %v", remote, err)
		conn.Close()
		return
	}
	if !s.track(sess) {
		sess.Close()
		return
	}
	defer s.untrack(sess)
	s.log.Printf("%v: session started", remote)
	serveSession(sess, s.cfg, s.log)
}

func (s *Server) track(sess *smux.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) untrack(sess *smux.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

// Close stops listening and closes every session, waiting at most
// timeout for the sessions to finish closing.
func (s *Server) Close(timeout time.Duration) {
	s.mu.Lock()
	s.closed = true
	sessions := make([]*smux.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()

	s.ln.Close()
	var wg sync.WaitGroup
	for _, sess := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess.Close()
		}()
	}
	waitTimeout(&wg, timeout)
}

// waitTimeout waits for wg, but no longer than d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// listenNetwork is "tcp4" for an IPv4 literal host, "tcp6" for an IPv6 one
// and "tcp" for a name or an empty host.
func listenNetwork(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp"
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "tcp"
	case ip.To4() != nil:
		return "tcp4"
	default:
		return "tcp6"
	}
}
