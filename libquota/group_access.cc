#include "group_access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace sluice {
namespace {

// A buffer for the getgr*_r / getpw*_r calls, grown while they ask for more.
template <class Lookup>
bool lookup(Lookup call) {
  std::vector<char> buf(4096);
  for (;;) {
    const int r = call(buf.data(), buf.size());
    if (r != ERANGE || buf.size() >= (std::size_t{1} << 24)) return r == 0;
    buf.resize(buf.size() * 2);
  }
}

std::string user_name(uid_t uid) {
  std::string name = std::to_string(uid);
  passwd pw{};
  passwd* found = nullptr;
  lookup([&](char* buf, std::size_t n) {
    const int r = ::getpwuid_r(uid, &pw, buf, n, &found);
    if (r == 0 && found != nullptr) name = found->pw_name;
    return r;
  });
  return name;
}

// Whether the group database lists `user` in group `gid` (as a member or
// as the user's primary group).
bool listed_in_group(uid_t uid, gid_t gid) {
  bool listed = false;
  std::string name;
  passwd pw{};
  passwd* pw_found = nullptr;
  lookup([&](char* buf, std::size_t n) {
    const int r = ::getpwuid_r(uid, &pw, buf, n, &pw_found);
    if (r == 0 && pw_found != nullptr) {
      name = pw_found->pw_name;
      listed = pw_found->pw_gid == gid;
    }
    return r;
  });
  if (listed || name.empty()) return listed;
  group gr{};
  group* gr_found = nullptr;
  lookup([&](char* buf, std::size_t n) {
    const int r = ::getgrgid_r(gid, &gr, buf, n, &gr_found);
    for (char** m = r == 0 && gr_found != nullptr ? gr_found->gr_mem : nullptr; m && *m; ++m) {
      listed |= name == *m;
    }
    return r;
  });
  return listed;
}

// Whether this process has `gid` as its effective or a supplementary group.
bool process_in_group(gid_t gid) {
  if (::getegid() == gid) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

std::string group_name(gid_t gid) {
  std::string name = std::to_string(gid);
  group gr{};
  group* found = nullptr;
  lookup([&](char* buf, std::size_t n) {
    const int r = ::getgrgid_r(gid, &gr, buf, n, &found);
    if (r == 0 && found != nullptr) name = found->gr_name;
    return r;
  });
  return name;
}

Result<gid_t> lookup_group(const std::string& name, const std::string& setting) {
  gid_t gid = 0;
  bool found_it = false;
  group gr{};
  group* found = nullptr;
  const bool answered = lookup([&](char* buf, std::size_t n) {
    const int r = ::getgrnam_r(name.c_str(), &gr, buf, n, &found);
    if (r == 0 && found != nullptr) {
      gid = found->gr_gid;
      found_it = true;
    }
    return r;
  });
  if (found_it) return gid;
  if (!answered) {
    return Status(ErrorCode::kIo, "cannot look up " + setting + " '" + name +
                                      "' in the group database; check /etc/nsswitch.conf");
  }
  return Status(ErrorCode::kInvalidArgument,
                setting + " '" + name + "' does not exist on this host; create it (groupadd " +
                    name + ") and add sluiced's user and the clients' users to it, or change " +
                    setting);
}

Status set_file_access(int fd, const std::string& path, mode_t mode, std::optional<gid_t> group) {
  // The group first: a chown by a non-root owner clears the set-group-ID bit.
  if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    const int err = errno;
    return Status(ErrorCode::kPermissionDenied,
                  "cannot give " + path + " to group '" + group_name(*group) +
                      "': " + std::strerror(err) + "; run sluiced as root or as a member of '" +
                      group_name(*group) + "' (usermod -aG " + group_name(*group) + " " +
                      user_name(::geteuid()) + "), or change segment.group");
  }
  if (::fchmod(fd, mode) != 0) {
    return Status(ErrorCode::kIo, "cannot set the mode of " + path + " to " + octal(mode) + ": " +
                                      std::strerror(errno) + "; check the file system");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status(ErrorCode::kIo, "cannot stat " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 0777) != (mode & 0777) || (group && st.st_gid != *group)) {
    return Status(ErrorCode::kIo, path + " is mode " + octal(st.st_mode) + ", group '" +
                                      group_name(st.st_gid) + "' after sluiced set mode " +
                                      octal(mode) +
                                      (group ? ", group '" + group_name(*group) + "'" : "") +
                                      "; the file system does not keep modes: use another one");
  }
  return Status::Ok();
}

std::string permission_denied_message(const std::string& path, bool write) {
  const std::string head = "permission denied on " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return head + ": " + std::strerror(errno) + "; check the permissions of its directory";
  }
  const std::string group = group_name(st.st_gid);
  const std::string owner = user_name(st.st_uid);
  const std::string me = user_name(::geteuid());
  const mode_t group_needs = write ? (S_IRGRP | S_IWGRP) : S_IRGRP;
  if ((st.st_mode & group_needs) != group_needs) {
    return head + ": its mode " + octal(st.st_mode) + " gives group '" + group + "' no " +
           (write ? "read-write" : "read") + " access; run as its owner '" + owner +
           "', or let the group in (chmod g+" + (write ? "rw " : "r ") + path + ")";
  }
  if (process_in_group(st.st_gid)) {
    return head + " although this process is in its group '" + group + "' (mode " +
           octal(st.st_mode) +
           "); check for a read-only mount or a security module (SELinux, AppArmor) refusing it";
  }
  if (st.st_gid == 0) {  // no segment.group: joining root's group is not the fix
    return head +
           ": it belongs to group 'root'; give it a group of its own (segment.group in "
           "sluiced's policy, then restart sluiced) and add this user to that group, or "
           "run as its owner '" +
           owner + "'";
  }
  if (listed_in_group(::geteuid(), st.st_gid)) {
    return head + ": user '" + me + "' was added to group '" + group +
           "' after this session started; log in again (or run: newgrp " + group + ")";
  }
  return head + ": add this user to group '" + group + "' (usermod -aG " + group + " " + me +
         ", then log in again) or run as its owner '" + owner + "'";
}

}  // namespace sluice
