package peer

import (
	"encoding/json"
	"log"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/smuxcompat"
)

// Info is the JSON document of the INFO reply.
type Info struct {
	Implementation   string                `json:"implementation"`
	SmuxVersion      string                `json:"smux_version"`
	Peer             string                `json:"peer"`
	ProtocolVersions []int                 `json:"protocol_versions"`
	Config           smuxcompat.ConfigInfo `json:"config"`
}

// NewInfo describes this binary running with cfg.
func NewInfo(cfg *smux.Config) Info {
	return Info{
		Implementation:   "xtaci/smux",
		SmuxVersion:      smuxcompat.Tag(),
		Peer:             "go-peer",
		ProtocolVersions: smuxcompat.ProtocolVersions(),
		Config:           smuxcompat.DescribeConfig(cfg),
	}
}

// infoLine renders the INFO reply: one JSON object and a newline.
func infoLine(cfg *smux.Config) []byte {
	b, err := json.Marshal(NewInfo(cfg))
	if err != nil {
		panic(err) // only plain fields: cannot fail
	}
	return append(b, '\n')
}

// serveSession accepts streams and runs the application protocol on each
// until the session ends, then closes the session.
func serveSession(sess *smux.Session, cfg *smux.Config, logger *log.Logger) {
	a := &app{sess: sess, info: infoLine(cfg), done: make(chan struct{}), log: logger}
	defer close(a.done)
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			logger.Printf("session ended: %v", err)
			return
		}
		go a.handleAccepted(st)
	}
}
