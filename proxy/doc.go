// Package proxy is Waygate's forward proxy: it admits company clients,
// authenticates them when configured, forwards plain HTTP requests with
// goproxy and carries CONNECT tunnels, always through the guarded dialer of
// package upstream. It is the only package that imports goproxy.
package proxy
