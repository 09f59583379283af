; Inno Setup 6 script: the Windows installer of FDFace Attendance, made from the PyInstaller one-folder bundle.
;   python -m PyInstaller --noconfirm packaging\fdface-attendance.spec
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 packaging\windows\fdface-attendance.iss
; Output: dist\fdface-attendance-VERSION-setup.exe. Per-user or all-users install (the user chooses), Start-menu
; entry, optional desktop icon, uninstaller in "Apps & features". The user's data (database, settings in
; %LOCALAPPDATA%\FDFaceAttendance) is kept on uninstall.

#define AppName "FDFace Attendance"
#define AppExe "fdface-attendance.exe"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\fdface-attendance"
#endif

[Setup]
AppId={{1F951AAC-4610-4FB0-ADC9-003F136053AF}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=FDFace Attendance
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=fdface-attendance-{#AppVersion}-setup
SetupIconFile=..\..\assets\icons\fdface-attendance.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; caches the app may write inside its own folder
Type: filesandordirs; Name: "{app}\_internal\desktop_app\gallery\migrations\__pycache__"
Type: filesandordirs; Name: "{app}\_internal\desktop_app\gallery\migrations\versions\__pycache__"
