// The file half of ipckit/detail/owned.hpp: a file a class made, unlinked only while it is still
// that file.
#include "ipckit/detail/owned.hpp"

#include <unistd.h>

namespace ipckit::detail {

bool MadeFile::is(const struct stat& st) const noexcept {
    return (st.st_mode & S_IFMT) == type && st.st_dev == device && st.st_ino == inode;
}

void UnlinkIfSame::operator()(const MadeFile& file) const noexcept {
    struct stat st {};
    if (!file.path.empty() && ::lstat(file.path.c_str(), &st) == 0 && file.is(st))
        ::unlink(file.path.c_str());
}

}  // namespace ipckit::detail
