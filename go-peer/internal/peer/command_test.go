package peer

import (
	"io"
	"strings"
	"testing"
)

func TestReadCommandLineDoesNotOverRead(t *testing.T) {
	r := strings.NewReader("SOURCE 10\nrest of the data")
	line, err := ReadCommandLine(r)
	if err != nil || line != "SOURCE 10" {
		t.Fatalf("got %q, %v", line, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "rest of the data" {
		t.Fatalf("over-read: left %q", rest)
	}
}

func TestReadCommandLineLimits(t *testing.T) {
	ok := strings.Repeat("A", MaxCommandLine-1) + "\n" // 256 bytes with the newline
	if line, err := ReadCommandLine(strings.NewReader(ok)); err != nil || len(line) != MaxCommandLine-1 {
		t.Fatalf("256-byte line: %d bytes, %v", len(line), err)
	}
	for name, in := range map[string]string{
		"257 bytes":   strings.Repeat("A", MaxCommandLine) + "\n",
		"no newline":  "ECHO",
		"empty":       "",
		"non-ASCII":   "ECH\xc3\x96\n",
		"long no eol": strings.Repeat("x", 1000),
	} {
		if line, err := ReadCommandLine(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted %q", name, line)
		}
	}
}

func TestParseCommand(t *testing.T) {
	good := map[string]string{
		"ECHO": "ECHO", "SINK": "SINK", "INFO": "INFO", "CLOSE": "CLOSE", "EXIT": "EXIT",
		"SOURCE 0": "SOURCE 0", "SOURCE 1048576": "SOURCE 1048576", "HOLD 250": "HOLD 250",
		"OPEN 3 SOURCE 100": "OPEN 3 SOURCE 100", "OPEN 0 ECHO": "OPEN 0 ECHO",
		"OPEN 2 OPEN 1 INFO": "OPEN 2 OPEN 1 INFO", "HALFCLOSE": "HALFCLOSE",
		"RESULT 3 1000": "RESULT 3 1000", "RESULT 4294967295 0": "RESULT 4294967295 0",
	}
	for in, want := range good {
		c, err := ParseCommand(in)
		if err != nil || c.String() != want {
			t.Errorf("%q: got %v, %v", in, c, err)
		}
	}
	for _, in := range []string{
		"", "echo", "ECHO ", "ECHO 1", "SOURCE", "SOURCE -1", "SOURCE +1", "SOURCE 1 2",
		"SOURCE 99999999999999999999", "HOLD x", "OPEN 2", "OPEN x ECHO", "OPEN 2 NOPE",
		"OPEN 70000 ECHO", "INFO\r", "CLOSE now", "HALFCLOSE 1", "RESULT", "RESULT 3",
		"RESULT 4294967296 10", "RESULT x 10",
	} {
		if c, err := ParseCommand(in); err == nil {
			t.Errorf("%q: accepted as %v", in, c)
		}
	}
}

func TestParseExchange(t *testing.T) {
	e, err := ParseExchange("100:SINK")
	if err != nil || e.N != 100 || e.Line != "SINK" {
		t.Fatalf("100:SINK parsed as %+v, %v", e, err)
	}
	c, err := ParseCommand("RUN 0:SOURCE 7")
	if err != nil || c.Run == nil || c.Run.Line != "SOURCE 7" || c.String() != "RUN 0:SOURCE 7" {
		t.Fatalf("RUN 0:SOURCE 7 parsed as %+v, %v", c, err)
	}
	for _, bad := range []string{"SINK", "x:SINK", "1:NOPE", "-1:SINK"} {
		if _, err := ParseExchange(bad); err == nil {
			t.Errorf("ParseExchange(%q) accepted", bad)
		}
	}
}
