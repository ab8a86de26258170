package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"waygate/proxy/upstream"
)

// connectViaParent opens a tunnel to target through the parent proxy with a
// CONNECT request of our own.
func connectViaParent(ctx context.Context, parent *url.URL, target string) (net.Conn, error) {
	c, err := dialParent(ctx, "tcp", parent.Host)
	if err != nil {
		return nil, &upstream.DialError{Addr: parent.Host, Cause: upstream.CauseOf(err), Err: fmt.Errorf("parent proxy: %w", err)}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	c.SetDeadline(deadline)
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := parent.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	req += "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, &upstream.DialError{Addr: parent.Host, Cause: upstream.CauseOf(err), Err: fmt.Errorf("parent proxy: %w", err)}
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, &upstream.DialError{Addr: parent.Host, Cause: upstream.CauseOf(err), Err: fmt.Errorf("parent proxy: %w", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, &upstream.DialError{Addr: target, Cause: upstream.CauseRefused, Err: fmt.Errorf("parent proxy answered %s", resp.Status)}
	}
	c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn reads what a bufio.Reader still holds before the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
