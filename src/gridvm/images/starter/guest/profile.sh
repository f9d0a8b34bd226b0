# gridvm tiny image: /etc/profile for login shells on the console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME="${HOME:-/root}"
export TERM="${TERM:-linux}"
PS1='\u@\h:\w\$ '
