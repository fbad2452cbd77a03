#include "store/fault_vfs.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

namespace sluice::store {
namespace {

std::string gTrigger;
sqlite3_vfs* gReal = nullptr;
sqlite3_vfs gVfs;
sqlite3_io_methods gMethods;

struct FaultFile {
    sqlite3_file base;
    sqlite3_file* real;  // lives right after this struct
};

bool faulting() { return !gTrigger.empty() && ::access(gTrigger.c_str(), F_OK) == 0; }
sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }

int fClose(sqlite3_file* f)
{
    int rc = real(f)->pMethods ? real(f)->pMethods->xClose(real(f)) : SQLITE_OK;
    return rc;
}
int fRead(sqlite3_file* f, void* p, int n, sqlite3_int64 off) { return real(f)->pMethods->xRead(real(f), p, n, off); }
int fWrite(sqlite3_file* f, const void* p, int n, sqlite3_int64 off)
{
    if (faulting())
        return SQLITE_FULL;
    return real(f)->pMethods->xWrite(real(f), p, n, off);
}
int fTruncate(sqlite3_file* f, sqlite3_int64 size)
{
    if (faulting())
        return SQLITE_IOERR_TRUNCATE;
    return real(f)->pMethods->xTruncate(real(f), size);
}
int fSync(sqlite3_file* f, int flags)
{
    if (faulting())
        return SQLITE_IOERR_FSYNC;
    return real(f)->pMethods->xSync(real(f), flags);
}
int fFileSize(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
int fLock(sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); }
int fUnlock(sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); }
int fCheckReserved(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
int fFileControl(sqlite3_file* f, int op, void* arg) { return real(f)->pMethods->xFileControl(real(f), op, arg); }
int fSectorSize(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
int fDeviceCharacteristics(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
int fShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out)
{
    return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
}
int fShmLock(sqlite3_file* f, int offset, int n, int flags) { return real(f)->pMethods->xShmLock(real(f), offset, n, flags); }
void fShmBarrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
int fShmUnmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }
int fFetch(sqlite3_file* f, sqlite3_int64 off, int n, void** pp) { return real(f)->pMethods->xFetch(real(f), off, n, pp); }
int fUnfetch(sqlite3_file* f, sqlite3_int64 off, void* p) { return real(f)->pMethods->xUnfetch(real(f), off, p); }

int vOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* outFlags)
{
    auto* ff = reinterpret_cast<FaultFile*>(file);
    ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
    std::memset(ff->real, 0, static_cast<size_t>(gReal->szOsFile));
    int rc = gReal->xOpen(gReal, name, ff->real, flags, outFlags);
    // SQLite calls xClose only when pMethods is set, so leave it null when the open failed.
    ff->base.pMethods = (rc == SQLITE_OK && ff->real->pMethods) ? &gMethods : nullptr;
    return rc;
}
int vDelete(sqlite3_vfs*, const char* name, int syncDir) { return gReal->xDelete(gReal, name, syncDir); }
int vAccess(sqlite3_vfs*, const char* name, int flags, int* out) { return gReal->xAccess(gReal, name, flags, out); }
int vFullPathname(sqlite3_vfs*, const char* name, int n, char* out) { return gReal->xFullPathname(gReal, name, n, out); }
void* vDlOpen(sqlite3_vfs*, const char* name) { return gReal->xDlOpen(gReal, name); }
void vDlError(sqlite3_vfs*, int n, char* msg) { gReal->xDlError(gReal, n, msg); }
void (*vDlSym(sqlite3_vfs*, void* h, const char* sym))(void) { return gReal->xDlSym(gReal, h, sym); }
void vDlClose(sqlite3_vfs*, void* h) { gReal->xDlClose(gReal, h); }
int vRandomness(sqlite3_vfs*, int n, char* out) { return gReal->xRandomness(gReal, n, out); }
int vSleep(sqlite3_vfs*, int us) { return gReal->xSleep(gReal, us); }
int vCurrentTime(sqlite3_vfs*, double* out) { return gReal->xCurrentTime(gReal, out); }
int vGetLastError(sqlite3_vfs*, int n, char* out) { return gReal->xGetLastError ? gReal->xGetLastError(gReal, n, out) : 0; }
int vCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return gReal->xCurrentTimeInt64(gReal, out); }

}  // namespace

Status registerFaultVfs(const std::string& triggerFile)
{
    static std::once_flag once;
    static int rc = SQLITE_OK;
    gTrigger = triggerFile;
    std::call_once(once, [] {
        gReal = sqlite3_vfs_find(nullptr);
        if (!gReal) {
            rc = SQLITE_ERROR;
            return;
        }
        gMethods = sqlite3_io_methods{};
        gMethods.iVersion = 3;
        gMethods.xClose = fClose;
        gMethods.xRead = fRead;
        gMethods.xWrite = fWrite;
        gMethods.xTruncate = fTruncate;
        gMethods.xSync = fSync;
        gMethods.xFileSize = fFileSize;
        gMethods.xLock = fLock;
        gMethods.xUnlock = fUnlock;
        gMethods.xCheckReservedLock = fCheckReserved;
        gMethods.xFileControl = fFileControl;
        gMethods.xSectorSize = fSectorSize;
        gMethods.xDeviceCharacteristics = fDeviceCharacteristics;
        gMethods.xShmMap = fShmMap;
        gMethods.xShmLock = fShmLock;
        gMethods.xShmBarrier = fShmBarrier;
        gMethods.xShmUnmap = fShmUnmap;
        gMethods.xFetch = fFetch;
        gMethods.xUnfetch = fUnfetch;

        gVfs = sqlite3_vfs{};
        gVfs.iVersion = 2;
        gVfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + gReal->szOsFile;
        gVfs.mxPathname = gReal->mxPathname;
        gVfs.zName = kFaultVfsName;
        gVfs.xOpen = vOpen;
        gVfs.xDelete = vDelete;
        gVfs.xAccess = vAccess;
        gVfs.xFullPathname = vFullPathname;
        gVfs.xDlOpen = vDlOpen;
        gVfs.xDlError = vDlError;
        gVfs.xDlSym = vDlSym;
        gVfs.xDlClose = vDlClose;
        gVfs.xRandomness = vRandomness;
        gVfs.xSleep = vSleep;
        gVfs.xCurrentTime = vCurrentTime;
        gVfs.xGetLastError = vGetLastError;
        gVfs.xCurrentTimeInt64 = vCurrentTimeInt64;
        rc = sqlite3_vfs_register(&gVfs, 0);
    });
    if (rc != SQLITE_OK)
        return Status::internal("cannot register the fault-injection VFS");
    return Status::ok();
}

}  // namespace sluice::store
