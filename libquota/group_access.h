// Files Sluice shares with a group. sluiced gives the segment (mode 0660)
// and the audit directory (2750) and files (0640) to the policy's
// segment.group; a process outside that group that is refused access gets
// one line naming the group to join. Not the hot path: these look up the
// user and group databases.
//
//   Result<gid_t> g = lookup_group("sluice", "segment.group");
//   if (!g.ok()) return g.status();  // "segment.group 'sluice' does not exist; ..."
//   if (Status s = set_file_access(fd, path, 0660, g.value()); !s.ok()) return s;
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sluice/status.h"

namespace sluice {

// The gid of `group`. `setting` names where the name came from in the
// error ("segment.group"), which says how to create the group.
Result<gid_t> lookup_group(const std::string& group, const std::string& setting);

// Gives the open file `fd` (named `path` in errors) to `group` when set, then
// sets its mode to exactly `mode` (no umask), and checks both with fstat.
Status set_file_access(int fd, const std::string& path, mode_t mode, std::optional<gid_t> group);

// The name of group `gid`, or its number when it has none.
std::string group_name(gid_t gid);

// Why this process may not open `path` (for writing when `write`), as one
// line naming the fix, from the file's owner, group and mode: usually
// "permission denied on PATH: add this user to group 'G' (usermod -aG G
// USER, then log in again) or run as its owner 'O'".
std::string permission_denied_message(const std::string& path, bool write);

}  // namespace sluice
