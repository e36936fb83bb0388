/* SPDX-License-Identifier: Apache-2.0 */
#include "elf-soname.h"

#include <elf.h>
#include <sys/stat.h>

#if defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#else /* x86-64: the other architecture NVIDIA's driver ships for */
#define NATIVE_MACHINE EM_X86_64
#endif

/* Bounds on what a library's headers may ask us to read: real ones are far below. */
#define PHDR_MAX    256
#define DYNAMIC_MAX (64u * 1024)
#define SONAME_MAX  4096

static int read_at(int fd, void *buf, size_t size, uint64_t off, uint64_t file_size)
{
        if (off > file_size || size > file_size - off)
                return -EBADMSG;
        for (size_t done = 0; done < size;) {
                ssize_t k = pread(fd, (uint8_t *)buf + done, size - done, (off_t)(off + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EBADMSG;
                done += (size_t)k;
        }
        return 0;
}

/* The file offset of a virtual address, through the PT_LOAD segment holding it. */
static int vaddr_to_offset(const Elf64_Phdr *ph, size_t n, uint64_t vaddr, uint64_t *ret)
{
        for (size_t i = 0; i < n; i++)
                if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr &&
                    vaddr - ph[i].p_vaddr < ph[i].p_filesz) {
                        *ret = ph[i].p_offset + (vaddr - ph[i].p_vaddr);
                        return 0;
                }
        return -EBADMSG;
}

int elf_read_soname(int fd, char **ret)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOEXEC;
        uint64_t size = (uint64_t)st.st_size;

        Elf64_Ehdr eh;
        if (read_at(fd, &eh, sizeof eh, 0, size) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
            eh.e_type != ET_DYN || eh.e_machine != NATIVE_MACHINE)
                return -ENOEXEC;
        if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > PHDR_MAX)
                return -EBADMSG;

        Elf64_Phdr ph[PHDR_MAX];
        int r = read_at(fd, ph, sizeof(Elf64_Phdr) * eh.e_phnum, eh.e_phoff, size);
        if (r < 0)
                return r;
        const Elf64_Phdr *dyn = NULL;
        for (size_t i = 0; i < eh.e_phnum; i++)
                if (ph[i].p_type == PT_DYNAMIC)
                        dyn = &ph[i];
        if (!dyn) {
                *ret = NULL; /* a static shared object: no dynamic section, no SONAME */
                return 0;
        }

        size_t n_dyn = (size_t)MIN(dyn->p_filesz, (uint64_t)DYNAMIC_MAX) / sizeof(Elf64_Dyn);
        _cleanup_free_ Elf64_Dyn *d = new0(Elf64_Dyn, MAX(n_dyn, 1u));
        if (!d)
                return -ENOMEM;
        r = read_at(fd, d, n_dyn * sizeof(Elf64_Dyn), dyn->p_offset, size);
        if (r < 0)
                return r;
        uint64_t strtab = 0, strsz = 0, soname = 0;
        bool have_strtab = false, have_soname = false;
        for (size_t i = 0; i < n_dyn && d[i].d_tag != DT_NULL; i++) {
                if (d[i].d_tag == DT_STRTAB) {
                        strtab = d[i].d_un.d_ptr;
                        have_strtab = true;
                } else if (d[i].d_tag == DT_STRSZ)
                        strsz = d[i].d_un.d_val;
                else if (d[i].d_tag == DT_SONAME) {
                        soname = d[i].d_un.d_val;
                        have_soname = true;
                }
        }
        if (!have_soname) {
                *ret = NULL;
                return 0;
        }
        if (!have_strtab || soname >= strsz)
                return -EBADMSG;

        uint64_t off;
        r = vaddr_to_offset(ph, eh.e_phnum, strtab, &off);
        if (r < 0)
                return r;
        if (off > UINT64_MAX - soname)
                return -EBADMSG;
        off += soname;
        char buf[SONAME_MAX];
        size_t want = (size_t)MIN((uint64_t)sizeof buf, strsz - soname);
        if (off >= size)
                return -EBADMSG;
        want = (size_t)MIN((uint64_t)want, size - off);
        r = read_at(fd, buf, want, off, size);
        if (r < 0)
                return r;
        char *nul = memchr(buf, '\0', want);
        if (!nul || nul == buf)
                return -EBADMSG;
        char *s = strdup(buf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
