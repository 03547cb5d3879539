# Warnings and sanitizers applied to every target the project builds.
function(ipckit_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
  if(IPCKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(IPCKIT_SANITIZE)
  list(JOIN IPCKIT_SANITIZE "," _ipckit_sanitizers)
  add_compile_options(-fsanitize=${_ipckit_sanitizers} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_ipckit_sanitizers})
  if("thread" IN_LIST IPCKIT_SANITIZE)
    # GCC warns that the thread sanitizer does not model atomic_thread_fence. The rings' hot
    # handshake uses seq_cst operations instead under it (IPCKIT_RING_FENCELESS in ring.cpp);
    # the fences left (the topic's seqlock, the lanes' sleeper count) are kept as they are.
    add_compile_options(-Wno-tsan)
  endif()
endif()
