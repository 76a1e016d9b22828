# Turn a file into a C array (cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake):
# const char NAME[] (the bytes, then a NUL) and const size_t NAME_len (without the NUL).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* Generated from ${IN} by gateway/embed.cmake: do not edit. */
#include <stddef.h>
extern const char ${NAME}[];
extern const size_t ${NAME}_len;
const char ${NAME}[] = {
${body}0};
const size_t ${NAME}_len = ${len};
")
