# Sourced by build.sh and test-tags.sh (bash). Run from the go-peer folder.
#
# smux_select TAG sets, for one tag of github.com/xtaci/smux:
#   modflag  array: (-modfile=mod/smux-TAG.mod), or () for the tag go.mod pins
#   gotags   the Go build tag for the tag's Config API (see
#            internal/smuxcompat/compat.go), read from the module source
smux_module=github.com/xtaci/smux

smux_default_tag() {
	awk -v m="$smux_module" '$1 == "require" && $2 == m { print $3 }' go.mod
}

smux_select() {
	local tag=$1 srcdir
	modflag=()
	if [[ -f mod/smux-$tag.mod ]]; then
		modflag=(-modfile="mod/smux-$tag.mod")
	elif [[ $tag != "$(smux_default_tag)" ]]; then
		echo "no module file for xtaci/smux $tag; create it with: mod/add-tag.sh $tag" >&2
		return 2
	fi
	srcdir=$(go list "${modflag[@]}" -m -f '{{.Dir}}' "$smux_module")
	if [[ -z $srcdir ]]; then # not in the module cache yet
		go mod download "${modflag[@]}" "$smux_module"
		srcdir=$(go list "${modflag[@]}" -m -f '{{.Dir}}' "$smux_module")
	fi
	if grep -q 'KeepAliveDisabled' "$srcdir/mux.go"; then
		gotags=""
	elif grep -q 'MaxStreamBuffer' "$srcdir/mux.go"; then
		gotags="smux_nokadisable"
	else
		gotags="smux_legacy"
	fi
}
