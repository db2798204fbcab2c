# escape=`

FROM mcr.example.com/windows/servercore:ltsc2022
WORKDIR C:\app
COPY app.ps1 C:\app\
RUN powershell -Command `
    $ErrorActionPreference = 'Stop'; `
    Write-Host "hello"
ENV GREETING="a `"quoted`" word"
