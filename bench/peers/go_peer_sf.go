// bench/peers/go_peer_sf.go: golang.org/x/sync/singleflight for the map
// family's herd case (weft-go-peer herd ... 1). Built into weft-go-peer
// only when Debian's golang-golang-x-sync-dev is installed (GOPATH mode,
// /usr/share/gocode: nothing downloaded); see bench/meson.build.
package main

import "golang.org/x/sync/singleflight"

var sfGroup singleflight.Group

func init() {
	singleflightDo = sfGroup.Do
}
